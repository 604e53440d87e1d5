/**
 * `GET /healthz`: what a load balancer probes. 200 while the process serves and its Redis
 * connections are up, 503 naming those that are down, and 503 while it drains.
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

Deno.test("the site answers health probes: ok while it serves, unavailable while a Redis connection is down", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const url = server.httpUrl("/healthz");
  assertEquals(await probe(url), { status: 200, body: { status: "ok" }, cache: "no-store" });
  assertEquals((await probe(url, "HEAD")).status, 200);
  // As the layer's connection says while Redis is away.
  const untrack = trackRedisConnection({
    name: "layer commands",
    up: false,
    lostSince: performance.now(),
    restoredCount: 0,
    downMsRestored: 0,
  });
  try {
    assertEquals(await probe(url), {
      status: 503,
      body: { status: "unavailable", redisDown: ["layer commands"] },
      cache: "no-store",
    });
    await captured.waitFor(
      /^HTTP GET \/healthz 503 .*\(Redis connection\(s\) down: layer commands\)$/,
    );
  } finally {
    untrack();
  }
  assertEquals((await probe(url)).status, 200, "back once it is restored");
});

Deno.test("a draining server answers health probes 503, so the balancer stops sending it clients", async () => {
  await using app = await createTestApp();
  await app.drain(0);
  const response = await app.handle(new Request("http://localhost/healthz"));
  await response.body?.cancel();
  assertEquals([response.status, response.headers.get("retry-after")], [503, "1"]);
});
