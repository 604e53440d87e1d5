/** How an access line names a client behind a trusted proxy (`server/_shown_client.ts`). */
import { assert, assertEquals } from "@std/assert";
import { shownClient } from "../../server/_shown_client.ts";
import { type Consumer, createApp, log, serveApp, socket } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { TestSocket } from "../_support/socket.ts";

Deno.test("a forwarded address is shown with the proxy's connection; a client served straight as itself", () => {
  assertEquals(shownClient("203.0.113.7", "127.0.0.1:55906"), "203.0.113.7 via 127.0.0.1:55906");
  assertEquals(shownClient("[2001:db8::7]", "[::1]:55906"), "[2001:db8::7] via [::1]:55906");
  assertEquals(shownClient("198.51.100.9:4444", "198.51.100.9:4444"), "198.51.100.9:4444");
  assertEquals(shownClient("-", "-"), "-", "no connection: a test's request");
  assertEquals(shownClient("127.0.0.1:40000", undefined), "127.0.0.1:40000");
});

Deno.test("a forwarded value a client wrote can neither forge a proxy connection nor push the real one out", () => {
  // A proxy that passes the header on leaves its last entry to the client.
  assertEquals(
    shownClient("203.0.113.7 via 10.0.0.5:1234", "198.51.100.9:4444"),
    '"203.0.113.7 via 10.0.0.5:1234" via 198.51.100.9:4444',
  );
  const long = shownClient(`203.0.113.7${"x".repeat(600)}`, "198.51.100.9:4444");
  assert(long.endsWith(" via 198.51.100.9:4444") && long.length < 300, long);
});

Deno.test("a consumer's failure behind a trusted proxy is logged with the proxy's connection, as its access lines are", async () => {
  await using services = await createTestServices({ trustProxy: true });
  using captured = new CapturedLog();
  log.setLevel("info");
  const failing: Consumer = () => ({
    receive: () => {
      throw new Error("boom");
    },
  });
  const app = createApp({ routes: [socket("/ws/fail/", failing)], services });
  const server = await serveApp(app, { hostname: "127.0.0.1", port: 0 });
  try {
    const url = `${server.url.replace(/^http/, "ws")}/ws/fail/`;
    const client = await TestSocket.open(url, { headers: { "x-forwarded-for": "203.0.113.7" } });
    client.send("anything");
    const failed = await captured.waitFor(/^.* Consumer failed on \/ws\/fail\//);
    const connect = await captured.waitFor(/^WebSocket CONNECT \/ws\/fail\//);
    const connection = /via (127\.0\.0\.1:\d+)\]/.exec(connect)?.[1];
    assert(connection !== undefined && failed.includes(`[203.0.113.7 via ${connection}]`), failed);
    await client.close();
  } finally {
    await server.shutdown();
    log.setLevel("silent");
  }
});
