/**
 * `GET /metrics` in the Prometheus text format, never public by accident: on the app's port
 * only with a token (`METRICS_TOKEN`, sent as `Authorization: Bearer <token>`: 401 without it,
 * 401 with `error="invalid_token"` with another), or without one on a separate listen address (`METRICS_ADDRESS`), which
 * answers nothing else. With neither, there is no such route (404).
 */
import { listen, type Listener } from "./_listener.ts";
import type { Handler } from "./context.ts";
import type { ServerMetrics } from "./server_metrics.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../telemetry/metrics.ts";
import { logReason, takeLogReason } from "./log_reason.ts";
import { formatAddr, log } from "../telemetry/log.ts";
import { redactedTarget } from "../auth/tokens.ts";
import { hasValidHost, targetAsSent } from "./_request_host.ts";
import { sameSecret, warnRefusedToken } from "./_bearer.ts";
import { bearerToken } from "../auth/tokens.ts";
import { type AppRoute, page } from "./routes.ts";

/** Where the metrics are served. */
export const METRICS_PATH = "/metrics";

/**
 * `routes` with `GET /metrics` for requests carrying `token`. An app's own page there is named
 * at start, with the setting that took its path, rather than as a route registered twice.
 */
export function withMetricsRoute(routes: readonly AppRoute[], token: string): AppRoute[] {
  const taken = routes.some((route) =>
    route.path === METRICS_PATH && route.handler.kind === "http" &&
    (route.method === "GET" || route.method === "HEAD")
  );
  if (taken) {
    throw new TypeError(
      `Route "${METRICS_PATH}": the app has a page there, and METRICS_TOKEN makes ` +
        `GET ${METRICS_PATH} the metrics route. Move the page, or serve the metrics on their ` +
        "own listener (METRICS_ADDRESS) without METRICS_TOKEN",
    );
  }
  return [...routes, page("GET", METRICS_PATH, metricsHandler(token))];
}

/** The scrape answer: every metric, never cached. */
export function metricsResponse(metrics: ServerMetrics): Response {
  return new Response(metrics.render(), {
    headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

/** `GET /metrics` on the app's port, for requests that carry `token` as a bearer token. */
export function metricsHandler(token: string): Handler {
  if (token === "") throw new TypeError("The metrics route needs a token");
  return async (request, context) => {
    const given = bearerToken(request);
    if (given === null) {
      const missing = plain(401, "Authorization: Bearer <METRICS_TOKEN> is required", {
        "www-authenticate": 'Bearer realm="metrics"',
      });
      return logReason(missing, "no bearer token");
    }
    if (!await sameSecret(given, token)) {
      warnRefusedToken(context.services, METRICS_PATH, context.client);
      // RFC 6750 §3.1: a token that is not valid is 401 too, and the challenge says so.
      const invalid = plain(401, "The token is not valid", {
        "www-authenticate": 'Bearer realm="metrics", error="invalid_token"',
      });
      return logReason(invalid, "wrong token");
    }
    return metricsResponse(context.services.metrics);
  };
}

/**
 * Serves only `GET /metrics`, without a token, on `address` (e.g. `127.0.0.1:9100`); resolves
 * with the server once it listens. Each request gets its access line, as on the app's port.
 */
export function serveMetrics(
  metrics: ServerMetrics,
  address: { hostname: string; port: number },
): Promise<Listener> {
  // Its own listener, which comes back after a failed accept as the app's does.
  return listen({ hostname: address.hostname, port: address.port }, (request, info) => {
    const started = performance.now();
    const response = metricsAddressAnswer(request, metrics);
    const reason = takeLogReason(response);
    // The path as the client sent it, read without the host (which may be what was wrong).
    const target = URL.parse(targetAsSent(request), "http://h");
    const seconds = (performance.now() - started) / 1000;
    const client = formatAddr(info.remoteAddr);
    const path = target === null ? "-" : redactedTarget(target);
    log.http(request.method, path, response.status, seconds, client, reason);
    return response;
  });
}

function metricsAddressAnswer(request: Request, metrics: ServerMetrics): Response {
  // A Host that is no host is refused as the app's port refuses it (see `hasValidHost`).
  const path = hasValidHost(request) ? URL.parse(request.url)?.pathname : undefined;
  if (path === undefined) {
    const bad = plain(400, "Bad Request: the Host header is not a valid host");
    return logReason(bad, "the Host header is not a valid host");
  }
  if (path !== METRICS_PATH) {
    return logReason(plain(404, "Only /metrics is served here"), "only /metrics is served here");
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    const refused = plain(405, "Method Not Allowed", { allow: "GET, HEAD" });
    return logReason(refused, "the method is not allowed here: GET, HEAD only");
  }
  return metricsResponse(metrics);
}

function plain(status: number, text: string, headers: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
