/**
 * `GET /healthz`, what a load balancer or an orchestrator probes: 200 `{"status":"ok"}` while the
 * process serves and every Redis connection it holds is up; 503 `{"status":"unavailable",
 * "redisDown":[…]}` with the connections that are down otherwise. While Redis is away the pages
 * still answer, but chat messages are refused, so a balancer should send new clients to another
 * process. While the server drains it answers 503, as every request then is. A probe touches no
 * backend: it reads the connections' state this process keeps for its metrics.
 */
import { redisHealth } from "../storage/redis_health.ts";
import { logReason } from "./log_reason.ts";
import { type AppRoute, page } from "./routes.ts";

/** Where the bundled site answers health probes. */
export const HEALTH_PATH = "/healthz";

/** The health route, at `path` (default `/healthz`), for an app's route table. */
export function healthRoutes(path: string = HEALTH_PATH): AppRoute[] {
  return [page("GET", path, () => healthResponse())];
}

function healthResponse(): Response {
  const down = redisHealth().filter((health) => health.up === 0).map((health) => health.connection);
  const headers = { "cache-control": "no-store" };
  if (down.length === 0) return Response.json({ status: "ok" }, { headers });
  const unavailable = Response.json({ status: "unavailable", redisDown: down }, {
    status: 503,
    headers,
  });
  return logReason(unavailable, `Redis connection(s) down: ${down.join(", ")}`);
}
