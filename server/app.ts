/**
 * The app: a function from `Request` to `Response` that tests call without a port, and that
 * `Deno.serve` runs. It routes, answers 404/405/400 itself, runs WebSocket routes' consumers,
 * adds the security headers every answer carries, and writes one access line per request.
 *
 * @example
 * ```ts
 * import { type Consumer, createApp, type Services, socket } from "@channels/deno";
 *
 * declare const echoConsumer: Consumer;
 * declare const services: Services;
 * const app = createApp({ routes: [socket("/ws/echo/", echoConsumer)], services });
 * Deno.serve(app.handle);
 * ```
 */
import type { Handler, RequestContext, Services } from "./context.ts";
import { type AppRoute, checkRouteTable, type RouteTarget } from "./routes.ts";
import { logReason, takeLogReason } from "./log_reason.ts";
import { MAX_PATH_LENGTH, Router } from "./router.ts";
import { asksForWebSocket } from "./handshake.ts";
import { type UpgradeWebSocket, websocketHandler } from "./websocket_route.ts";
import { LiveConnections } from "./live_connections.ts";
import { CloseCode } from "./close_codes.ts";
import { CLOSE_TIMEOUT_MS } from "./_connection_constants.ts";
import { html, htmlResponse } from "./html.ts";
import { formatAddr, log } from "../telemetry/log.ts";
import { ConnectionCaps } from "./connection_caps.ts";
import { redactedTarget } from "../auth/tokens.ts";
import { isBackendUnavailable } from "../storage/unavailable.ts";
import { BodyCutShortError, BodyNotUtf8Error } from "./request_body.ts";
import { type Closable, closeOwned, DRAIN_LINGER_MS, drainApp } from "./_app_drain.ts";
import { finish } from "./_finish.ts";
import {
  DRAINING,
  type ErrorPage,
  refuseWhileStopping,
  SHUTTING_DOWN,
  type Stopping,
  urlOrHostRefusal,
} from "./_refusals.ts";

export { type Closable, DRAIN_LINGER_MS };
import { withMetricsRoute } from "./metrics_route.ts";
import type { ServerMetrics } from "./server_metrics.ts";
import { forwardedAddress, forwardedByProxy } from "../auth/forwarded.ts";
import { proxyHeaderHint } from "./_proxy_hint.ts";
import { shownClient } from "./_shown_client.ts";
import { tellTest } from "./_told_in_tests.ts";

/** Renders the answer for a 4xx or 5xx status the framework gives itself. */
export type { ErrorPage };

/** What an app is built from. */
export interface AppOptions {
  /** The route table (see `page` and `socket`). */
  routes: readonly AppRoute[];
  /** The services handlers and consumers reach through their context. */
  services: Services;
  /** Replaces `Deno.upgradeWebSocket` (the testing communicator passes its own). */
  upgrade?: UpgradeWebSocket;
  /** The page for 404, 405, 400 and 500 (default: a plain page). */
  errorPage?: ErrorPage;
  /** Closed in reverse order once the sockets are closed, e.g. to flush what waits to be written. */
  owns?: readonly Closable[];
}

/** A built app. */
export interface App {
  /** Answers one request; `info` is what `Deno.serve` passes. */
  handle(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** What the app was built with, e.g. for a test to reach its layer or store. */
  readonly services: Services;
  /** The open sockets. */
  readonly live: LiveConnections;
  /** The caps on open sockets per address and per user, with their refusal counts. */
  readonly caps: ConnectionCaps;
  /**
   * Closes every socket with 1001 and waits for their consumers, ends their presence at once,
   * then closes what the app owns. The backends under `services` are the opener's to close.
   */
  close(): Promise<void>;
  /**
   * A drain on deploy: closes every socket with 1012 (Service Restart) spread evenly over
   * `windowMs`, waits at most 1,000 ms (`DRAIN_LINGER_MS`) more for their consumers, hands
   * presence over to the other processes (users keep their grace period), then closes what the
   * app owns. Shares one run with {@linkcode App.close}: whichever comes first is the one. From
   * its start, new requests are answered 503 with `Retry-After: 1`, each with its log line.
   */
  drain(windowMs: number): Promise<void>;
}

/**
 * How long a shutdown waits for the sockets it closed to run their `disconnect` hooks. A
 * socket whose client never answers is let go after the connection's own close timeout, so
 * only a hook that never ends reaches this bound.
 */
export const SHUTDOWN_WAIT_MS = CLOSE_TIMEOUT_MS + 1000;

/** Builds an app from its route table and services. */
export function createApp(options: AppOptions): App {
  const { services } = options ?? {};
  if (services?.config === undefined) {
    throw new TypeError(
      "createApp({ routes, services }) needs the services its routes run on: " +
        "createServices(config, await openBackends(config)), or createTestServices() in a test",
    );
  }
  const live = new LiveConnections();
  const caps = new ConnectionCaps({
    perAddress: services.config.maxConnectionsPerAddress,
    perUser: services.config.maxConnectionsPerUser,
  });
  const errorPage = options.errorPage ?? errorResponse;
  const { metricsToken, metricsAddress } = services.config;
  // Only with a token: never public by accident (a separate address is `serveApp`'s).
  const routes = metricsToken === ""
    ? options.routes
    : withMetricsRoute(options.routes, metricsToken);
  checkRouteTable(routes);
  if (metricsToken !== "" || metricsAddress !== null) services.metrics.startLagMonitor();
  const tracking = { live, caps, metrics: services.metrics };
  const router = new Router<Handler & { websocket?: true }>(
    routes.map((route) => ({
      ...route,
      handler: handlerOf(route.handler, route.path, tracking, options.upgrade),
    })),
  );
  // The lag timer stops last, once everything the app owns is closed.
  const owns = [services.metrics, ...(options.owns ?? [])];

  // Why new requests are refused (503): the app drains, or closes; null while it serves.
  let stopping: Stopping | null = null;
  const hintProxy = services.config.trustProxy ? null : proxyHeaderHint();

  async function handle(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const started = performance.now();
    const peer = formatAddr(info?.remoteAddr);
    const client = clientAddress(request, peer, services.config.trustProxy);
    hintProxy?.(request, peer);
    const logged = shownClient(client, peer); // the access line's
    const url = urlOrHostRefusal(request, services.config, errorPage, { client: logged, started });
    if (!(url instanceof URL)) return url;
    if (stopping !== null) return refuseWhileStopping(request, url, logged, stopping);
    // A page and a WebSocket route may share a path, as in Channels' ProtocolTypeRouter: an
    // upgrade goes to the socket, anything else to the page.
    const upgrade = asksForWebSocket(request);
    const prefer = upgrade ? isSocketRoute : isPageRoute;
    const match = router.match(request.method, url.pathname, url.search, prefer);
    let response: Response;
    if (match.kind === "found") {
      const context: RequestContext = { url, params: match.params, client, peer, services };
      response = await run(match.handler, request, context, errorPage);
      // A WebSocket route logs its own handshake lines, as Daphne does; a request to it that
      // asks for no upgrade is an HTTP request, logged as one.
      if (match.handler.websocket && upgrade) return finish(request, response);
    } else if (upgrade && (match.kind === "redirect" || match.kind === "not-found")) {
      const meant = (path: string) => {
        const there = router.match(request.method, path, "", isSocketRoute);
        return there.kind === "found" && isSocketRoute(there.handler);
      };
      const redirectedTo = match.kind === "redirect" ? match.location : undefined;
      response = refuseUnroutedUpgrade(
        url.pathname,
        slashMeant(url.pathname, meant, { redirectedTo }),
      );
    } else if (upgrade && (match.kind === "bad-request" || match.kind === "uri-too-long")) {
      response = refuseMalformedUpgrade(match);
    } else {
      response = answerUnmatched(match, errorPage);
    }
    const reason = takeLogReason(response);
    response = await finish(request, response);
    const seconds = (performance.now() - started) / 1000;
    // Never a token in the log: `?token=…` shows as `?token=[redacted]`.
    log.http(request.method, redactedTarget(url), response.status, seconds, logged, reason);
    return response;
  }

  let closing: Promise<void> | null = null;
  return {
    handle,
    services,
    live,
    caps,
    close: () =>
      closing ??= (async () => {
        stopping ??= SHUTTING_DOWN; // a request now would find its backends closing
        const unfinished = await live.closeAll(CloseCode.GOING_AWAY, "Server shutting down", {
          waitMs: SHUTDOWN_WAIT_MS,
        });
        if (unfinished > 0) {
          log.warn(`Shutdown: ${unfinished} connection(s) had not finished; going on`);
        }
        // Sockets closed by a shutdown end their presence now, not after a grace period.
        await services.presence.close();
        await closeOwned(owns);
      })(),
    drain: (windowMs) => {
      stopping = DRAINING;
      return closing ??= drainApp(live, services, owns, windowMs);
    },
  };
}

const isSocketRoute = (handler: { websocket?: true }): boolean => handler.websocket === true;
const isPageRoute = (handler: { websocket?: true }): boolean => handler.websocket !== true;

function handlerOf(
  target: RouteTarget,
  path: string,
  tracking: { live: LiveConnections; caps: ConnectionCaps; metrics: ServerMetrics },
  upgrade: UpgradeWebSocket | undefined,
): Handler & { websocket?: true } {
  if (target.kind === "http") return target.handle;
  const { live, caps, metrics } = tracking;
  // Made with the route table: a connection only adds to its route's numbers.
  const meter = metrics.route(path);
  const options = { ...target.options, live, caps, meter, upgrade };
  const handler = websocketHandler(target.consumer, options);
  return Object.assign(handler, { websocket: true as const });
}

/** How long a client is asked to wait when a backend is unavailable (`Retry-After`). */
const RETRY_AFTER_SECONDS = 5;

async function run(
  handler: Handler,
  request: Request,
  context: RequestContext,
  errorPage: ErrorPage,
): Promise<Response> {
  let response: unknown;
  try {
    response = await handler(request, context);
  } catch (error) {
    // The client's failure, not a bug: one access line says so.
    if (error instanceof BodyCutShortError) {
      return logReason(
        errorPage(400, "Bad Request", "The request body was cut short."),
        error.message,
      );
    }
    if (error instanceof BodyNotUtf8Error) {
      return logReason(errorPage(400, "Bad Request", `${error.message}.`), error.message);
    }
    if (isBackendUnavailable(error)) {
      // Not a bug: what it needs is away for now (Redis restarting, a full disk). One line.
      log.warn(
        `Handler for ${request.method} ${context.url.pathname} met an unavailable backend: ` +
          `${(error as Error).message}`,
      );
      const unavailable = logReason(
        errorPage(
          503,
          "Service Unavailable",
          "The service is briefly unavailable. Please try again in a moment.",
        ),
        `a backend is unavailable: ${(error as Error).message}`,
      );
      try {
        unavailable.headers.set("retry-after", String(RETRY_AFTER_SECONDS));
      } catch {
        // an app's error page with immutable headers: answered as it is
      }
      return unavailable;
    }
    const failed = `Handler failed for ${request.method} ${context.url.pathname}`;
    log.error(failed, error);
    tellTest(context.services, `App: ${failed} (answered 500):`, { error });
    return logReason(serverError(errorPage), "the handler failed: its error is logged above");
  }
  if (response instanceof Response) return response;
  // A handler that forgot its `return`: say which, rather than fail later without a route.
  const returned = `Handler for ${request.method} ${context.url.pathname} returned ${
    response === null ? "null" : typeof response
  }, not a Response`;
  log.error(returned);
  tellTest(context.services, `App: ${returned} (answered 500)`);
  return logReason(serverError(errorPage), "the handler returned no Response");
}

function serverError(errorPage: ErrorPage): Response {
  return errorPage(500, "Server Error", "Something went wrong on our side. Please try again.");
}

function answerUnmatched(
  match: { kind: string; location?: string; allow?: string[]; reason?: string },
  errorPage: ErrorPage,
): Response {
  switch (match.kind) {
    case "redirect":
      return new Response(null, { status: 301, headers: { location: match.location! } });
    case "method-not-allowed": {
      const response = errorPage(
        405,
        "Method Not Allowed",
        "This address does not accept that method.",
      );
      response.headers.set("allow", match.allow!.join(", "));
      return logReason(response, `the method is not allowed here: ${match.allow!.join(", ")} only`);
    }
    case "bad-request":
      return logReason(errorPage(400, "Bad Request", match.reason!), match.reason!);
    case "uri-too-long": {
      const detail = `The path is longer than ${MAX_PATH_LENGTH} characters.`;
      return logReason(errorPage(414, "URI Too Long", detail), "the path is too long");
    }
    default: {
      const response = errorPage(404, "Not Found", "There is no page at this address.");
      return match.reason === undefined ? response : logReason(response, match.reason);
    }
  }
}

// A path no route can read (a stray "%", too long), asked for an upgrade: in plain words, as every
// other handshake refusal, not the app's HTML page (a WebSocket client shows no page).
function refuseMalformedUpgrade(match: { kind: string; reason?: string }): Response {
  const [status, text, reason] = match.kind === "bad-request"
    ? [400, `Bad handshake: ${match.reason}`, match.reason!]
    : [
      414,
      `Bad handshake: the path is longer than ${MAX_PATH_LENGTH} characters`,
      "the path is too long",
    ];
  return logReason(new Response(text, { status, headers: TEXT }), reason);
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

/**
 * The socket route `pathname` likely meant, when only a trailing slash is missing or one too
 * many (`hasSocket` says whether a path is a socket route's); `/chat` is a page's address, and
 * `/ws/echo//` names no route (`/ws/echo/` is not "without its trailing slash"). The router's
 * `redirectedTo` is the path with its slash as the route reads it (`/ws/%65cho` as `/ws/echo/`).
 */
function slashMeant(
  pathname: string,
  hasSocket: (path: string) => boolean,
  { redirectedTo }: { redirectedTo?: string } = {},
): { path: string; slash: "with" | "without" } | undefined {
  if (!pathname.endsWith("/")) {
    const path = redirectedTo ?? `${pathname}/`;
    return hasSocket(`${pathname}/`) ? { path, slash: "with" } : undefined;
  }
  const bare = pathname.slice(0, -1);
  if (bare === "" || bare.endsWith("/")) return undefined;
  return hasSocket(bare) ? { path: bare, slash: "without" } : undefined;
}

// A WebSocket client follows no redirect and shows no page: an upgrade no socket route takes
// gets a 404 in plain words, which name the route `meant` when only a trailing slash is missing
// from the path or added to it (a 301 there failed every client with nothing said, as Channels'
// "No route found" would).
function refuseUnroutedUpgrade(
  pathname: string,
  meant: { path: string; slash: "with" | "without" } | undefined,
): Response {
  if (meant === undefined) {
    return logReason(
      new Response(`No WebSocket route at ${pathname}`, { status: 404, headers: TEXT }),
      "no WebSocket route here",
    );
  }
  const route = meant.path.replace(/[?#].*$/s, "");
  const reason = `no WebSocket route here; ${route} has one` +
    (meant.slash === "with" ? ": a WebSocket does not follow a redirect" : "");
  const text = `No WebSocket route at ${pathname}: the route is ${route}, ${meant.slash} its ` +
    "trailing slash";
  return logReason(new Response(text, { status: 404, headers: TEXT }), reason);
}

/** A plain HTML error page with `status`: the default {@linkcode ErrorPage}. */
export function errorResponse(status: number, title: string, detail: string): Response {
  const body = html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <title>${status} ${title}</title>
      </head>
      <body>
        <h1>${status} ${title}</h1>
        <p class="error-detail">${detail}</p>
      </body>
    </html>
  `;
  return htmlResponse(body, { status });
}

function clientAddress(request: Request, peer: string, trustProxy: boolean): string {
  // The address our proxy saw (see `forwardedByProxy`), without a port it may have added.
  const entry = trustProxy ? forwardedByProxy(request.headers, "x-forwarded-for") : undefined;
  return entry === undefined ? peer : forwardedAddress(entry);
}
