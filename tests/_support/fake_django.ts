/**
 * A stand-in for a Django project's who-am-I view (`auth/django_session.ts`), on port 0: it
 * answers from a table of session keys, and can be made to fail the ways a real one does
 * (an error status, no answer in time, a body that is not JSON, or one too large).
 */

/** How the fake answers the next requests. */
export type FakeDjangoMode = "normal" | "500" | "400" | "hang" | "malformed" | "huge";

/** A running fake view; `await using` stops it. */
export interface FakeDjango extends AsyncDisposable {
  /** The view's URL, for `djangoSession.url`. */
  readonly url: string;
  /** Session key → what the view says of it; a key not here is anonymous. */
  readonly sessions: Map<string, { username: string; expiresAt: number; id?: unknown }>;
  /** The `Cookie` and `Authorization` headers of each request, oldest first. */
  readonly requests: { cookie: string | null; authorization: string | null }[];
  /** How the next requests are answered. */
  mode: FakeDjangoMode;
  /** How many requests to a hung view were given up by their sender. */
  readonly abandoned: number;
  /** Resolves once `count()` is `at least`; rejects after 5 s. */
  until(count: () => number, atLeast: number): Promise<void>;
  /** Stops listening: the view is then unreachable. */
  stop(): Promise<void>;
}

/** Starts the fake view, reading the session key from the cookie `cookie`. */
export function startFakeDjango(cookie = "sessionid"): FakeDjango {
  const hung = new AbortController(); // answers a hung request once the fake stops
  const fake = {
    sessions: new Map<string, { username: string; expiresAt: number; id?: unknown }>(),
    requests: [] as FakeDjango["requests"],
    mode: "normal" as FakeDjangoMode,
    abandoned: 0,
  };
  const waiting = new Set<() => void>();
  const changed = () => waiting.forEach((check) => check());
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    fake.requests.push({
      cookie: request.headers.get("cookie"),
      authorization: request.headers.get("authorization"),
    });
    if (fake.mode === "hang") {
      request.signal.addEventListener("abort", () => {
        fake.abandoned++;
        changed();
      });
    }
    changed();
    return answer(fake, request, cookie, hung.signal);
  });
  let stopped: Promise<void> | null = null;
  const stop = () => {
    hung.abort();
    return stopped ??= server.shutdown();
  };
  const until = (count: () => number, atLeast: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(check);
        reject(new Error(`The fake Django saw ${count()}, not ${atLeast}, within 5 s`));
      }, 5000);
      const check = () => {
        if (count() < atLeast) return;
        clearTimeout(timer);
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      check();
    });
  return Object.assign(fake, {
    until,
    url: `http://127.0.0.1:${server.addr.port}/channels/whoami/`,
    stop,
    [Symbol.asyncDispose]: stop,
  });
}

function answer(
  fake: Pick<FakeDjango, "sessions" | "mode">,
  request: Request,
  cookie: string,
  hung: AbortSignal,
): Response | Promise<Response> {
  if (fake.mode === "500") return new Response("Server Error", { status: 500 });
  // Django's answer to a host not in its ALLOWED_HOSTS (DisallowedHost).
  if (fake.mode === "400") return new Response("Bad Request", { status: 400 });
  if (fake.mode === "malformed") return new Response("<html>Welcome</html>");
  if (fake.mode === "huge") return Response.json({ authenticated: false, pad: "x".repeat(10_000) });
  if (fake.mode === "hang") {
    return new Promise((resolve) => hung.addEventListener("abort", () => resolve(new Response())));
  }
  const key = /(?:^|;\s*)([^=;\s]+)=([^;]*)/.exec(request.headers.get("cookie") ?? "");
  const session = key !== null && key[1] === cookie ? fake.sessions.get(key[2]) : undefined;
  if (session === undefined) return Response.json({ authenticated: false });
  return Response.json({
    authenticated: true,
    username: session.username,
    ...(session.id !== undefined && { id: session.id }),
    is_staff: false,
    expires_at: session.expiresAt / 1000,
  });
}

/** Settings of a Django view never asked (a test of what the start says): nothing listens there. */
export const UNASKED_DJANGO = Object.freeze({
  url: "http://127.0.0.1:9/w/",
  cookie: "sessionid",
  timeoutMs: 1,
  secret: "",
});
