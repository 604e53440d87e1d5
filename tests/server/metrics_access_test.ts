/** `GET /metrics` is never public by accident: tokens, a separate address, its access lines. */
import {
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { createApp, page, serveApp } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { InMemoryLayer, log, serveMetrics, ServerMetrics } from "../../mod.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { parse, testApp, TOKEN } from "./_metrics_support.ts";

Deno.test("/metrics does not exist without a token or an address", async () => {
  await using test = await testApp({ metricsToken: "" });
  const response = await test.app.handle(
    new Request("http://localhost/metrics", { headers: { authorization: "Bearer " } }),
  );
  assertEquals(response.status, 404);
  await response.body?.cancel();
});

Deno.test("/metrics without a token is 401, with a wrong one too, saying it is invalid", async () => {
  await using test = await testApp();
  const anonymous = await test.app.handle(new Request("http://localhost/metrics"));
  assertEquals(anonymous.status, 401);
  assertEquals(anonymous.headers.get("www-authenticate"), 'Bearer realm="metrics"');
  await anonymous.body?.cancel();
  for (const wrong of ["guess", `${TOKEN}x`, TOKEN.slice(1)]) {
    const response = await test.app.handle(
      new Request("http://localhost/metrics", { headers: { authorization: `Bearer ${wrong}` } }),
    );
    assertEquals(response.status, 401);
    assertEquals(
      response.headers.get("www-authenticate"),
      'Bearer realm="metrics", error="invalid_token"',
    );
    assertEquals((await response.text()).includes("channels_"), false);
  }
});

Deno.test("a separate metrics address serves /metrics alone, without a token", async () => {
  const services = await createTestServices({
    metricsToken: "",
    metricsAddress: { hostname: "127.0.0.1", port: 0 },
  });
  const app = createApp({
    routes: [page("GET", "/", () => new Response("home"))],
    services,
  });
  const server = await serveApp(app, { hostname: "127.0.0.1", port: 0 });
  try {
    const url = server.metricsUrl;
    if (url === null) throw new Error("no metrics address");
    const metrics = await fetch(url);
    assertEquals(metrics.status, 200);
    parse(await metrics.text());
    const other = await fetch(url.replace("/metrics", "/"));
    assertEquals(other.status, 404);
    await other.body?.cancel();
    const onAppPort = await fetch(`${server.url}/metrics`);
    assertEquals(onAppPort.status, 404, "the app's own port has no /metrics without a token");
    await onAppPort.body?.cancel();
  } finally {
    await server.shutdown();
    await services[Symbol.asyncDispose]();
  }
});

Deno.test("an address in use names the setting it belongs to", async () => {
  await using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  for (
    const [overrides, serveOn, setting] of [
      [{}, port, "HOST and PORT: 127.0.0.1:" + port],
      [
        { metricsAddress: { hostname: "127.0.0.1", port } },
        0,
        "METRICS_ADDRESS: 127.0.0.1:" + port,
      ],
    ] as const
  ) {
    await using services = await createTestServices({ metricsToken: "", ...overrides });
    const app = createApp({ routes: [page("GET", "/", () => new Response("home"))], services });
    await assertRejects(
      () => serveApp(app, { hostname: "127.0.0.1", port: serveOn }),
      Error,
      `The address of ${setting} is in use by another program`,
    );
    await app.close();
  }
});

Deno.test("with METRICS_TOKEN, an app's own GET /metrics page is named at start with the setting", async () => {
  await using services = await createTestServices({ metricsToken: TOKEN });
  const mine = page("GET", "/metrics", () => new Response("the app's own"));
  const error = assertThrows(() => createApp({ routes: [mine], services }), TypeError);
  assertStringIncludes(error.message, "METRICS_TOKEN makes GET /metrics the metrics route");
  // Without the token the path is the app's.
  await using free = await createTestServices({ metricsToken: "" });
  const app = createApp({ routes: [mine], services: free });
  const answer = await app.handle(new Request("http://localhost/metrics"));
  assertEquals(await answer.text(), "the app's own");
  await app.close();
});

Deno.test("each request to the metrics address gets one access line, a refusal's with its reason", async () => {
  using captured = new CapturedLog();
  log.setLevel("info");
  const layer = new InMemoryLayer();
  const listener = await serveMetrics(new ServerMetrics({ layer }), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const base = `http://127.0.0.1:${listener.addr.port}`;
    for (const [method, path] of [["GET", "/metrics"], ["GET", "/"], ["POST", "/metrics"]]) {
      await (await fetch(base + path, { method })).body?.cancel();
    }
    // By hand: a Host that is no host, and an empty one (allowed, RFC 9112 section 3.2).
    const sent = async (host: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      await conn.write(
        new TextEncoder().encode(
          `GET /metrics HTTP/1.1\r\nHost:${host}\r\nConnection: close\r\n\r\n`,
        ),
      );
      return new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    };
    assertMatch(await sent(" a b"), /^HTTP\/1\.1 400 /);
    assertMatch(await sent(""), /^HTTP\/1\.1 200 /);
    const line = (method: string, path: string, status: number, reason = "") =>
      new RegExp(
        `^HTTP ${method} ${path} ${status} \\[\\d+\\.\\d{3}, 127\\.0\\.0\\.1:\\d+\\]${reason}$`,
      );
    await captured.waitFor(line("GET", "/metrics", 200));
    await captured.waitFor(line("GET", "/", 404, String.raw` \(only /metrics is served here\)`));
    await captured.waitFor(
      line(
        "POST",
        "/metrics",
        405,
        String.raw` \(the method is not allowed here: GET, HEAD only\)`,
      ),
    );
    await captured.waitFor(
      line("GET", "/metrics", 400, String.raw` \(the Host header is not a valid host\)`),
    );
    // The empty Host's line names the path alone, not the address Deno put in its place.
    assertEquals(captured.lines.filter((l) => line("GET", "/metrics", 200).test(l)).length, 2);
    assertEquals(captured.lines.length, 5, captured.lines.join("\n"));
  } finally {
    log.setLevel("silent");
    await listener.shutdown();
    await layer.close();
  }
});
