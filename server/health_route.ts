/**
 * Health probes for load balancers and orchestrators, Kubernetes-style:
 *
 * - `GET /healthz` (liveness, and what a load balancer should probe): 200 `{"status":"ok"}` while
 *   the process serves, with `"redisDown"` naming its Redis connections that are down, if any;
 *   503 only while it drains. Pages keep answering while Redis is away, and every process shares
 *   one Redis: a probe that failed then would take the whole site out, or restart every process
 *   into a start that needs Redis.
 * - `GET /readyz` (readiness): 503 also while one of this process's Redis connections is down.
 *   It suits taking one process out whose own connection is cut (a network partition); in a
 *   shared outage it takes every process out at once.
 *
 * A probe touches no backend: it reads the connections' state this process keeps for its metrics.
 */
import { redisHealth } from "../storage/redis_health.ts";
import { logReason } from "./log_reason.ts";
import { type AppRoute, page } from "./routes.ts";

/** Where the bundled site answers liveness probes. */
export const HEALTH_PATH = "/healthz";
/** Where the bundled site answers readiness probes. */
export const READY_PATH = "/readyz";

/** The paths of {@linkcode healthRoutes}. */
export interface HealthPaths {
  /** Liveness (default `/healthz`). */
  live?: string;
  /** Readiness (default `/readyz`). */
  ready?: string;
}

/** The health routes, liveness and readiness, for an app's route table. */
export function healthRoutes(paths: HealthPaths = {}): AppRoute[] {
  return [
    page("GET", paths.live ?? HEALTH_PATH, () => healthResponse(false)),
    page("GET", paths.ready ?? READY_PATH, () => healthResponse(true)),
  ];
}

function healthResponse(needsRedis: boolean): Response {
  const down = redisHealth().filter((health) => health.up === 0).map((health) => health.connection);
  const headers = { "cache-control": "no-store" };
  if (down.length === 0) return Response.json({ status: "ok" }, { headers });
  const reason = `Redis connection(s) down: ${down.join(", ")}`;
  if (!needsRedis) {
    return logReason(Response.json({ status: "ok", redisDown: down }, { headers }), reason);
  }
  const unavailable = Response.json({ status: "unavailable", redisDown: down }, {
    status: 503,
    headers,
  });
  return logReason(unavailable, reason);
}
