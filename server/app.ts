/**
 * The app: a function from `Request` to `Response` that tests call without a port, and that
 * `main.ts` hands to `Deno.serve`. It routes, answers 404/405/400 itself, adds the security
 * headers every answer carries, and writes one access line per request.
 */
import type { Handler, Identity, RequestContext, Services } from "./context.ts";
import type { Config } from "./config.ts";
import type { GroupLayer } from "../layers/layer.ts";
import type { Store } from "../storage/store.ts";
import { type RouteHandler, routeTable } from "../routes/mod.ts";
import { Router } from "../routes/router.ts";
import { LiveConnections, type UpgradeWebSocket } from "../consumers/websocket_route.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { UserDirectory } from "../auth/users.ts";
import { SessionStore } from "../auth/sessions.ts";
import { LoginThrottle } from "../auth/throttle.ts";
import { identifyRequest } from "../auth/identify.ts";
import type { PresenceTracker } from "../layers/presence.ts";
import { createLocalPresence } from "../layers/presence_local.ts";
import { CloseCode } from "../consumers/close_codes.ts";
import { errorPage } from "../templates/error.ts";
import { htmlResponse } from "../templates/html.ts";
import { formatAddr, log } from "./log.ts";

/** What an app is built from. */
export interface AppOptions {
  config: Config;
  layer: GroupLayer;
  store: Store;
  /** Replaces `Deno.upgradeWebSocket` (tests). */
  upgrade?: UpgradeWebSocket;
  /** Replaces the in-process presence tracker (e.g. one shared through Redis). */
  presence?: PresenceTracker;
}

/** A built app. */
export interface App {
  /** Answers one request; `info` is what `Deno.serve` passes. */
  handle(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  readonly services: Services;
  /** The open sockets. */
  readonly live: LiveConnections;
  /** Closes every socket with 1001, waits for their consumers, and ends their presence. */
  closeSockets(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "content-security-policy":
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** Builds the app from its configuration and its layer and store. */
export function createApp(options: AppOptions): App {
  const live = new LiveConnections();
  const { config, store } = options;
  const hasher = new PasswordHasher({
    iterations: config.passwordIterations,
    allowWeak: config.allowWeakPasswordHashing,
  });
  if (config.allowWeakPasswordHashing) {
    log.warn("Weak password hashing is allowed: a setting for tests, never for production");
  }
  const users = new UserDirectory(store, hasher);
  const sessions = new SessionStore(store, { maxAgeSeconds: config.sessionMaxAgeSeconds });
  const services: Services = {
    config,
    layer: options.layer,
    store,
    users,
    sessions,
    throttle: new LoginThrottle(store, config.loginThrottle),
    presence: options.presence ??
      createLocalPresence(options.layer, { graceMs: config.presenceGraceMs }),
    identify: (request): Promise<Identity> => identifyRequest(request, { sessions, users }),
  };
  const router = new Router<RouteHandler>(routeTable({ services, live, upgrade: options.upgrade }));

  async function handle(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const started = performance.now();
    const url = new URL(request.url);
    const client = clientAddress(request, info, options.config.trustProxy);
    const match = router.match(request.method, url.pathname, url.search);
    let response: Response;
    let websocket = false;
    if (match.kind === "found") {
      websocket = match.handler.websocket;
      const context: RequestContext = { url, params: match.params, client, services };
      response = await run(match.handler.handle, request, context);
    } else {
      response = answerUnmatched(match);
    }
    response = finish(request, response);
    if (!websocket) {
      log.http(
        request.method,
        url.pathname + url.search,
        response.status,
        (performance.now() - started) / 1000,
        client,
      );
    }
    return response;
  }

  return {
    handle,
    services,
    live,
    closeSockets: async () => {
      await live.closeAll(CloseCode.GOING_AWAY, "Server shutting down");
      // Sockets closed by a shutdown end their presence now, not after a grace period.
      await services.presence.close();
    },
  };
}

async function run(handler: Handler, request: Request, context: RequestContext): Promise<Response> {
  try {
    return await handler(request, context);
  } catch (error) {
    log.error(`Handler failed for ${request.method} ${context.url.pathname}`, error);
    return errorResponse(
      500,
      "Server Error",
      "Something went wrong on our side. Please try again.",
    );
  }
}

function answerUnmatched(
  match: { kind: string; location?: string; allow?: string[]; reason?: string },
): Response {
  switch (match.kind) {
    case "redirect":
      return new Response(null, { status: 301, headers: { location: match.location! } });
    case "method-not-allowed": {
      const response = errorResponse(
        405,
        "Method Not Allowed",
        "This address does not accept that method.",
      );
      response.headers.set("allow", match.allow!.join(", "));
      return response;
    }
    case "bad-request":
      return errorResponse(400, "Bad Request", match.reason!);
    default:
      return errorResponse(404, "Not Found", "There is no page at this address.");
  }
}

/** An HTML error page with `status`. */
export function errorResponse(status: number, title: string, detail: string): Response {
  return htmlResponse(errorPage(status, title, detail), { status });
}

function finish(request: Request, response: Response): Response {
  if (response.status === 101) return response; // an upgrade: its headers are not ours to touch
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    if (!response.headers.has(name)) response.headers.set(name, value);
  }
  if (request.method === "HEAD" && response.body !== null) {
    return new Response(null, { status: response.status, headers: response.headers });
  }
  return response;
}

function clientAddress(
  request: Request,
  info: Deno.ServeHandlerInfo | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const forwarded = request.headers.get("x-forwarded-for")?.split(",")[0].trim();
    if (forwarded) return forwarded;
  }
  return formatAddr(info?.remoteAddr);
}
