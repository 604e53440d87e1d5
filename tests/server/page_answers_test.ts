/**
 * What a page handler returns is answered as it is meant, with the framework's headers: a
 * redirect made with `Response.redirect` (immutable headers), and a handler that forgot to
 * return gets the app's 500 page and a log line naming the route.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { createApp, page } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";

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

Deno.test("a HEAD of a page that streams on is answered without reading it to an end it has not", async () => {
  await using services = await createTestServices();
  let cancelled = false;
  const endless = () =>
    new Response(
      new ReadableStream({
        pull: (controller) => controller.enqueue(new Uint8Array(64 * 1024)),
        cancel: () => void (cancelled = true),
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  const app = createApp({ routes: [page("GET", "/feed/", endless)], services });
  const head = await app.handle(new Request("http://localhost/feed/", { method: "HEAD" }));
  assertEquals([head.status, head.headers.get("content-length"), head.body], [200, null, null]);
  assertEquals(cancelled, true);
  await app.close();
});

Deno.test("a HEAD of a page still being made, or whose body fails, is answered at once, with no length", async () => {
  await using services = await createTestServices();
  let cancelled = false;
  // A feed: a line now, the next ones later.
  const feed = () =>
    new Response(
      new ReadableStream({
        start: (controller) => controller.enqueue(new TextEncoder().encode("data: hello\n\n")),
        pull: () => new Promise(() => {}),
        cancel: () => void (cancelled = true),
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  const failing = () =>
    new Response(new ReadableStream({ pull: (controller) => controller.error(new Error("gone")) }));
  const app = createApp({
    routes: [page("GET", "/feed/", feed), page("GET", "/failing/", failing)],
    services,
  });
  for (const path of ["/feed/", "/failing/"]) {
    const head = await app.handle(new Request(`http://localhost${path}`, { method: "HEAD" }));
    assertEquals([head.status, head.headers.get("content-length"), head.body], [200, null, null]);
  }
  assertEquals(cancelled, true);
  await app.close();
});
