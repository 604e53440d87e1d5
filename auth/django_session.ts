/**
 * Who a Django project's session names, for a shop that moves its consumers here one at a time
 * and keeps its pages and log-in in Django: Channels' `AuthMiddlewareStack` read Django's
 * session, and a moved consumer must not lose its user. The server does not read Django's
 * session store (any backend, Django's signing): it asks a small Django view, server to server,
 * forwarding the one cookie, and the view answers JSON:
 * `{"authenticated": true, "username": "ada", "expires_at": 1767225600}`.
 *
 * A socket so identified joins the group of its Django session key (`sessionGroup`, as ours
 * do), so Django's `user_logged_out` can close it over channels_redis; where that close may
 * have been missed, "is it still live" is the same question asked again. It also joins its
 * user's group (`djangoUserGroup`): a password change ends the user's sessions without a
 * signal, so Django's app sends `session.recheck` there and each session is asked again.
 * Django unreachable, slow, failing or answering nonsense is an outage (503, retry), never an
 * anonymous user. So is a view asked too much: at most `DJANGO_MAX_IN_FLIGHT` questions at
 * once, the sockets of one session share theirs, and a handshake's is dropped when its client
 * leaves.
 */
import { ANONYMOUS, type ExternalSession, type Identity } from "./identify.ts";
import { readCookies } from "./cookies.ts";
import { sessionGroup } from "./sessions.ts";
import { log } from "../telemetry/log.ts";

/** How to reach Django's who-am-I view. */
export interface DjangoSessionOptions {
  /** The view's URL, e.g. `http://127.0.0.1:8001/channels/whoami/`. */
  url: string;
  /** Django's `SESSION_COOKIE_NAME`; `sessionid` by default. */
  cookie?: string;
  /** How long the view may take to answer, in ms; 2000 by default. */
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer <secret>`, for a view that checks who asks; none when empty. */
  secret?: string;
  /** The most questions to the view at once; {@linkcode DJANGO_MAX_IN_FLIGHT} by default. */
  maxInFlight?: number;
}

/**
 * The most questions one process asks Django's view at once by default: past it a handshake is
 * refused with 503 at once, rather than queued for a view that is slow already (or flooded).
 */
export const DJANGO_MAX_IN_FLIGHT = 32;

/** The most of an answer read: a who-am-I answer is a few dozen bytes. */
export const DJANGO_ANSWER_MAX_BYTES = 4096;

/**
 * The longest wait, in ms, before a recheck asks the view: spread so that a layer gap's rechecks
 * of every Django socket do not reach it at once.
 */
const RECHECK_SPREAD_MS = 500;

/** The binding's name in log lines ("Could not read the Django session again"). */
const KIND = "Django session";
const UNAVAILABLE = "Server busy: the Django session could not be checked; retry later";
const GONE = "the client left while its Django session was checked";
// What a session cookie of any Django backend can hold (a key, or signed_cookies' signed data);
// anything else cannot be Django's and is not forwarded.
const COOKIE_VALUE = /^[A-Za-z0-9._:\-]{1,4096}$/;

/** What the view said of one session. */
type Answer = { authenticated: false } | {
  authenticated: true;
  username: string;
  expiresAt: number;
};

/** Django's view could not say (unreachable, timed out, failed, malformed); the message says which. */
class DjangoUnavailable extends Error {}

/** Identity from Django's session cookie (see the module comment). */
export class DjangoSessionIdentity {
  #url: string;
  /** The URL as log lines give it: without a password or query it may hold. */
  #where: string;
  #cookie: string;
  #timeoutMs: number;
  #secret: string;
  #maxInFlight: number;
  #inFlight = 0;
  #shared = new Map<string, Promise<Answer>>();

  /** Asks the view at `options.url`. */
  constructor(options: DjangoSessionOptions) {
    const url = new URL(options.url); // a bad URL fails at start, not at a handshake
    this.#url = url.href;
    this.#where = url.origin + url.pathname;
    this.#cookie = options.cookie ?? "sessionid";
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#secret = options.secret ?? "";
    this.#maxInFlight = options.maxInFlight ?? DJANGO_MAX_IN_FLIGHT;
  }

  /**
   * Who `request`'s Django session cookie names: `null` when it carries none (or none Django
   * could have made) or Django says it names nobody; an identity with `unavailable` when Django
   * could not say.
   */
  async identify(request: Request): Promise<Identity | null> {
    const key = readCookies(request.headers)[this.#cookie];
    if (!key || !COOKIE_VALUE.test(key)) return null;
    let answer: Answer;
    try {
      answer = await this.#ask(key, request.signal);
    } catch (error) {
      if (!(error instanceof DjangoUnavailable)) throw error;
      // A client that left is no outage: the handshake says so (499), without a warning.
      if (request.signal.aborted) return { user: ANONYMOUS, sessionId: null, unavailable: GONE };
      log.warn(`Django session check failed (${error.message}); refusing the handshake with 503`);
      return { user: ANONYMOUS, sessionId: null, unavailable: UNAVAILABLE };
    }
    if (!answer.authenticated) return null;
    return {
      user: Object.freeze({
        username: answer.username,
        isAuthenticated: true,
        source: "django" as const,
      }),
      sessionId: null,
      expiresAt: answer.expiresAt,
      external: await this.#binding(key, answer.username),
    };
  }

  // A log-out in Django sends `connection.close` to this group; still live while Django still
  // names the same user. Rejects when Django cannot say: the caller closes or retries.
  async #binding(key: string, username: string): Promise<ExternalSession> {
    return {
      kind: KIND,
      group: await sessionGroup(key),
      userGroup: await djangoUserGroup(username),
      isLive: async (options = {}) => {
        const answer = await (options.shared === true ? this.#askShared(key) : this.#ask(key));
        return answer.authenticated && answer.username === username;
      },
    };
  }

  // One question for every socket of session `key` that rechecks while it is under way, after
  // a random wait of up to RECHECK_SPREAD_MS: a layer gap rechecks every socket at once, and a
  // user's tabs share one session. Not a cache: dropped once answered, so the next recheck asks
  // again. For rechecks only: a question shared was asked after the gap that started them, and a
  // log-out after it reaches the sockets through their group. A handshake asks its own, after
  // its join (a question from before it could miss a log-out whose close it did not hear).
  #askShared(key: string): Promise<Answer> {
    let answer = this.#shared.get(key);
    if (answer === undefined) {
      const wait = Math.floor(Math.random() * RECHECK_SPREAD_MS);
      answer = delay(wait).then(() => this.#ask(key)).finally(() => this.#shared.delete(key));
      this.#shared.set(key, answer);
    }
    return answer;
  }

  // One question to the view, unless `#maxInFlight` are asked already; dropped when `client`
  // (the handshake's signal) aborts: a client that left does not keep Django busy.
  async #ask(key: string, client?: AbortSignal): Promise<Answer> {
    if (this.#inFlight >= this.#maxInFlight) {
      throw new DjangoUnavailable(`${this.#maxInFlight} questions to ${this.#where} in flight`);
    }
    this.#inFlight++;
    try {
      return await this.#fetch(key, client);
    } finally {
      this.#inFlight--;
    }
  }

  // The question, with only the one cookie: never the client's other cookies, and the value
  // never in a log line.
  async #fetch(key: string, client?: AbortSignal): Promise<Answer> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const headers = new Headers({ cookie: `${this.#cookie}=${key}`, accept: "application/json" });
    if (this.#secret !== "") headers.set("authorization", `Bearer ${this.#secret}`);
    let response: Response;
    try {
      response = await fetch(this.#url, {
        headers,
        redirect: "manual", // a redirect to a log-in page is not an answer
        signal: client === undefined ? timeout : AbortSignal.any([timeout, client]),
      });
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      throw new DjangoUnavailable(
        timedOut
          ? `${this.#where} did not answer within ${this.#timeoutMs} ms`
          : `${this.#where} could not be reached: ${(error as Error).message}`,
      );
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new DjangoUnavailable(`${this.#where} answered ${response.status}`);
    }
    return parseAnswer(await limitedText(response, this.#where), this.#where);
  }
}

/**
 * The group of the Django user named `username`, as the README's Django receiver names it:
 * `django_user.` and the first 32 hex digits of the SHA-256 of the name's UTF-8: Channels'
 * group names hold only ASCII letters, digits, `-`, `_` and `.`, Django's usernames more.
 */
export async function djangoUserGroup(username: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(username));
  const hex = Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0"));
  return `${DJANGO_USER_GROUP_PREFIX}${hex.join("").slice(0, 32)}`;
}

/** How the group of a Django user's sockets begins (see {@linkcode djangoUserGroup}). */
export const DJANGO_USER_GROUP_PREFIX = "django_user.";

function delay(ms: number): Promise<void> {
  return ms === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

// The body, refused past DJANGO_ANSWER_MAX_BYTES without reading the rest.
async function limitedText(response: Response, url: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > DJANGO_ANSWER_MAX_BYTES) {
        throw new DjangoUnavailable(`${url} answered more than ${DJANGO_ANSWER_MAX_BYTES} bytes`);
      }
      text += decoder.decode(chunk, { stream: true });
    }
  } catch (error) {
    if (error instanceof DjangoUnavailable) throw error;
    throw new DjangoUnavailable(`${url} broke off its answer: ${(error as Error).message}`);
  }
  return text + decoder.decode();
}

// `{"authenticated": false}`, or `true` with a username and `expires_at` in epoch seconds.
function parseAnswer(text: string, url: string): Answer {
  let body: Record<string, unknown> | null = null;
  try {
    body = JSON.parse(text);
  } catch {
    // told below, with the rest of what is malformed
  }
  if (body === null || typeof body !== "object" || typeof body.authenticated !== "boolean") {
    throw new DjangoUnavailable(`${url} answered malformed JSON (no "authenticated" boolean)`);
  }
  if (!body.authenticated) return { authenticated: false };
  const { username, expires_at: expiresAt } = body;
  if (typeof username !== "string" || username === "") {
    throw new DjangoUnavailable(`${url} answered an authenticated user without a username`);
  }
  if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) {
    throw new DjangoUnavailable(`${url} answered an authenticated user without "expires_at"`);
  }
  return { authenticated: true, username, expiresAt: expiresAt * 1000 };
}
