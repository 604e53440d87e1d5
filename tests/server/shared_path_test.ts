/**
 * A page and a WebSocket route on one path, as Channels' ProtocolTypeRouter allows: over a real
 * socket, a browser's GET gets the page and a WebSocket client gets the consumer.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { type Consumer, createApp, page, socket } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { Router } from "../../server/router.ts";

const echo: Consumer = (conn) => ({ receive: (text) => conn.send(`echo: ${text}`) });

Deno.test("the router's preference picks between two routes of one method and path", () => {
  const router = new Router([
    { method: "GET", path: "/live/", handler: "page" },
    { method: "GET", path: "/live/", handler: "socket" },
    { method: "GET", path: "/:any/", handler: "pattern-socket" },
  ]);
  const handler = (prefer?: (handler: string) => boolean) => {
    const match = router.match("GET", "/live/", "", prefer);
    return match.kind === "found" ? match.handler : match.kind;
  };
  assertEquals(handler(), "page"); // none: the first, as before
  assertEquals(handler((h) => h === "socket"), "socket");
  assertEquals(handler((h) => h === "pattern-socket"), "pattern-socket");
  assertEquals(handler((h) => h === "nothing"), "page"); // none accepted: the first
  assertEquals(router.match("HEAD", "/live/", "", (h) => h === "socket").kind, "found");
});

for (const order of ["page first", "socket first"]) {
  Deno.test(`a page and a socket share a path (${order}): GET gets the page, an upgrade the socket`, async () => {
    await using services = await createTestServices();
    const routes = [
      page(
        "GET",
        "/live/",
        () => new Response("<h1>Live</h1>", { headers: { "content-type": "text/html" } }),
      ),
      socket("/live/", echo),
    ];
    if (order === "socket first") routes.reverse();
    const app = createApp({ routes, services });
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request, info) => app.handle(request, info),
    );
    const base = `127.0.0.1:${server.addr.port}/live/`;

    const response = await fetch(`http://${base}`);
    assertEquals(response.status, 200);
    assertStringIncludes(await response.text(), "<h1>Live</h1>");
    const head = await fetch(`http://${base}`, { method: "HEAD" });
    await head.body?.cancel();
    assertEquals(head.status, 200);

    const ws = new WebSocket(`ws://${base}`);
    const answer = new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send("hi");
      ws.onmessage = (event) => resolve(String(event.data));
      ws.onerror = () => reject(new Error("the upgrade was not answered by the socket route"));
    });
    assertEquals(await answer, "echo: hi");
    const closed = new Promise((resolve) => ws.onclose = resolve);
    ws.close();
    await closed;
    await app.close();
  });
}

Deno.test("a path with only a socket still answers a plain GET with 426", async () => {
  await using services = await createTestServices();
  const app = createApp({ routes: [socket("/only-socket/", echo)], services });
  const response = await app.handle(new Request("http://localhost/only-socket/"));
  await response.body?.cancel();
  assertEquals(response.status, 426);
  await app.close();
});
