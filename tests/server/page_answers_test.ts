/**
 * What a page handler returns is answered as it is meant, with the framework's headers: a
 * redirect made with `Response.redirect` (immutable headers), and a handler that forgot to
 * return gets the app's 500 page and a log line naming the route.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { createApp, page } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { RedisStore } from "../../storage/redis_store.ts";
import { createClient } from "redis";

Deno.test("Response.redirect from a page is answered as the redirect, with security headers", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [page("GET", "/old/", () => Response.redirect("http://localhost/new/", 301))],
    services,
  });
  const response = await app.handle(new Request("http://localhost/old/"));
  assertEquals(response.status, 301);
  assertEquals(response.headers.get("location"), "http://localhost/new/");
  assertEquals(response.headers.get("x-content-type-options"), "nosniff");
  await app.close();
});

Deno.test("a page that returns no Response gets the app's 500 page and a line naming it", async () => {
  using captured = new CapturedLog();
  await using services = await createTestServices({ logLevel: "error" });
  const forgot = (() => {}) as unknown as () => Response;
  const app = createApp({ routes: [page("GET", "/forgot/", forgot)], services });
  const response = await app.handle(new Request("http://localhost/forgot/"));
  assertEquals(response.status, 500);
  assertStringIncludes(await response.text(), "500 Server Error");
  assert(
    captured.lines.some((line) =>
      line.includes("Handler for GET /forgot/ returned undefined, not a Response")
    ),
    captured.lines.join("\n"),
  );
  await app.close();
});

Deno.test("a HEAD is answered with the length its GET's body has, and no body", async () => {
  await using services = await createTestServices();
  const body = "<!doctype html><p>héllo</p>\n";
  const app = createApp({
    routes: [
      page("GET", "/page/", () => new Response(body, { headers: { "content-type": "text/html" } })),
    ],
    services,
  });
  const get = await app.handle(new Request("http://localhost/page/"));
  const bytes = (await get.arrayBuffer()).byteLength;
  const head = await app.handle(new Request("http://localhost/page/", { method: "HEAD" }));
  // RFC 9110: the same Content-Length as the GET's (it read 0).
  assertEquals([head.status, head.headers.get("content-length")], [200, String(bytes)]);
  assertEquals(head.body, null);
  await app.close();
});

Deno.test("a HEAD of a page that streams on, waits, or fails is answered at once, with no length", async () => {
  await using services = await createTestServices();
  const cancelled = new Set<string>();
  const streamed = (name: string, source: UnderlyingDefaultSource<Uint8Array>) => () =>
    new Response(
      new ReadableStream({ ...source, cancel: () => void cancelled.add(name) }),
      { headers: { "content-type": "text/event-stream" } },
    );
  const app = createApp({
    routes: [
      // Never ends: not read to an end it has not.
      page(
        "GET",
        "/endless/",
        streamed("endless", {
          pull: (controller) => controller.enqueue(new Uint8Array(64 * 1024)),
        }),
      ),
      // A feed: a line now, the next ones later.
      page(
        "GET",
        "/feed/",
        streamed("feed", {
          start: (controller) => controller.enqueue(new TextEncoder().encode("data: hello\n\n")),
          pull: () => new Promise(() => {}),
        }),
      ),
      page(
        "GET",
        "/failing/",
        streamed("failing", {
          pull: (controller) => controller.error(new Error("gone")),
        }),
      ),
    ],
    services,
  });
  for (const path of ["/endless/", "/feed/", "/failing/"]) {
    const head = await app.handle(new Request(`http://localhost${path}`, { method: "HEAD" }));
    assertEquals([head.status, head.headers.get("content-length"), head.body], [200, null, null]);
  }
  assertEquals([...cancelled].sort(), ["endless", "feed"]);
  await app.close();
});

Deno.test({
  name: "a page whose store is away is answered 503 with Retry-After and one warning, not a 500",
  ignore: !(await redisAvailability({ privateServer: true })).available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    const store = await RedisStore.open({ url: redis.url, prefix: uniquePrefix("away") });
    await using services = await createTestServices({ logLevel: "warn" }, { store });
    const app = createApp({
      routes: [
        page("GET", "/profile/", async () => Response.json(await store.get(["users", "ada"]))),
        page("POST", "/profile/", async () => {
          await store.set(["users", "ada"], { name: "Ada" });
          return new Response("saved");
        }),
      ],
      services,
    });
    assertEquals((await app.handle(new Request("http://localhost/profile/"))).status, 200);
    // A Redis out of memory refuses writes (OOM): not now, rather than a bug.
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.sendCommand(["CONFIG", "SET", "maxmemory", "1"]);
    await admin.quit();
    const full = await app.handle(new Request("http://localhost/profile/", { method: "POST" }));
    assertEquals([full.status, full.headers.get("retry-after")], [503, "5"]);
    await full.body?.cancel();
    await redis.stop(); // Redis restarting, say
    const response = await app.handle(new Request("http://localhost/profile/"));
    assertEquals(response.status, 503);
    assertEquals(response.headers.get("retry-after"), "5");
    assertStringIncludes(await response.text(), "briefly unavailable");
    const lines = captured.lines.filter((line) => line.includes("/profile/"));
    assertEquals(lines.length, 2, lines.join("\n"));
    assert(lines.every((line) => line.includes("met an unavailable backend")), lines.join("\n"));
    await app.close();
  },
});

Deno.test("a 503 for a backend away and a 500 for a handler that threw say why on their access lines", async () => {
  using captured = new CapturedLog();
  await using services = await createTestServices({ logLevel: "info" });
  const away = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6390"), {
    code: "ECONNREFUSED",
  });
  const app = createApp({
    routes: [
      page("GET", "/away/", () => Promise.reject(away)),
      page("GET", "/broken/", () => Promise.reject(new Error("a bug"))),
    ],
    services,
  });
  const unavailable = await app.handle(new Request("http://localhost/away/"));
  await unavailable.body?.cancel();
  const broken = await app.handle(new Request("http://localhost/broken/"));
  await broken.body?.cancel();
  assertEquals([unavailable.status, broken.status], [503, 500]);
  // The reason rides on the response only to its line: the client never sees the header.
  assertEquals(unavailable.headers.get("x-channels-log-reason"), null);
  await captured.waitFor(
    /^HTTP GET \/away\/ 503 \[[\d.]+, .*\] \(a backend is unavailable: connect ECONNREFUSED 127\.0\.0\.1:6390\)$/,
  );
  await captured.waitFor(
    /^HTTP GET \/broken\/ 500 \[[\d.]+, .*\] \(the handler failed: its error is logged above\)$/,
  );
  await app.close();
});

Deno.test("a page whose Deno KV file turned read-only while the server ran gets 503, not 500", async () => {
  await using services = await createTestServices();
  // Deno KV's own error for a write to a file it opened read-only.
  const readOnly = new TypeError("Can not write to a read-only database.");
  const app = createApp({
    routes: [page("POST", "/save/", () => Promise.reject(readOnly))],
    services,
  });
  const answer = await app.handle(new Request("http://localhost/save/", { method: "POST" }));
  await answer.body?.cancel();
  assertEquals([answer.status, answer.headers.get("retry-after")], [503, "5"]);
  await app.close();
});
