/**
 * The health probes: `GET /healthz` (liveness) is 200 while the process serves, Redis or not;
 * `GET /readyz` (readiness) is 503 while one of its Redis connections is down; both are 503 while
 * it drains.
 */
import { assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { createTestApp } from "../_support/test_app.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { trackRedisConnection } from "../../storage/redis_health.ts";

async function probe(url: string, method = "GET") {
  const response = await fetch(url, { method });
  const body = method === "HEAD" ? null : await response.json();
  return { status: response.status, body, cache: response.headers.get("cache-control") };
}

Deno.test("liveness stays ok while a Redis connection is down, saying which; readiness answers 503", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const live = server.httpUrl("/healthz");
  const ready = server.httpUrl("/readyz");
  const ok = { status: 200, body: { status: "ok" }, cache: "no-store" };
  assertEquals(await probe(live), ok);
  assertEquals(await probe(ready), ok);
  assertEquals((await probe(live, "HEAD")).status, 200);
  // As the layer's connection says while Redis is away.
  const untrack = trackRedisConnection({
    name: "layer commands",
    up: false,
    lostSince: performance.now(),
    restoredCount: 0,
    downMsRestored: 0,
  });
  try {
    // Every process shares the Redis: a failing liveness probe would restart them all into a
    // start that needs it, while the pages still answer.
    assertEquals(await probe(live), {
      status: 200,
      body: { status: "ok", redisDown: ["layer commands"] },
      cache: "no-store",
    });
    assertEquals(await probe(ready), {
      status: 503,
      body: { status: "unavailable", redisDown: ["layer commands"] },
      cache: "no-store",
    });
    await captured.waitFor(
      /^HTTP GET \/readyz 503 .*\(Redis connection\(s\) down: layer commands\)$/,
    );
  } finally {
    untrack();
  }
  assertEquals((await probe(ready)).status, 200, "ready again once it is restored");
});

Deno.test("a draining server answers both probes 503, so the balancer stops sending it clients", async () => {
  await using app = await createTestApp();
  await app.drain(0);
  for (const path of ["/healthz", "/readyz"]) {
    const response = await app.handle(new Request(`http://localhost${path}`));
    await response.body?.cancel();
    assertEquals([response.status, response.headers.get("retry-after")], [503, "1"], path);
  }
});
