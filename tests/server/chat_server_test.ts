/** The chat over real WebSockets on port 0: rooms, Unicode names, history and restarts. */
import { assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";

const GENEROUS = { rateLimit: { perSecond: 10_000, burst: 10_000 } };

function join(server: TestServer, room: string): Promise<TestSocket> {
  return TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent(room)}/`));
}

/** Sends a message and waits for the sender's own copy, which comes after it was stored. */
async function say(socket: TestSocket, message: string): Promise<void> {
  socket.sendJson({ message });
  await socket.nextMatching((frame) => frame.message === message);
}

/** Sends a marker and asserts it is the next frame: nothing else was waiting before it. */
async function assertNothingBefore(socket: TestSocket, marker: string): Promise<void> {
  socket.sendJson({ message: marker });
  assertEquals((await socket.nextJson()).message, marker, "a message from another room arrived");
}

Deno.test("three clients in one room all receive each other's messages", async () => {
  await using server = await startTestServer();
  const clients = [
    await join(server, "lobby"),
    await join(server, "lobby"),
    await join(server, "lobby"),
  ];
  for (const [i, sender] of clients.entries()) {
    sender.sendJson({ message: `hello from ${i}` });
    for (const client of clients) {
      const frame = await client.nextJson();
      assertEquals([frame.message, frame.author, frame.room], [
        `hello from ${i}`,
        "Anonymous",
        "lobby",
      ]);
    }
  }
  for (const client of clients) await client.close();
});

Deno.test("a room's messages never reach another room", async () => {
  await using server = await startTestServer();
  const [lobby, other] = [await join(server, "lobby"), await join(server, "other")];
  await say(lobby, "only for the lobby");
  // Had the lobby's message reached `other`, it would have been queued before this one.
  await assertNothingBefore(other, "marker");
  await lobby.close();
  await other.close();
});

Deno.test("Unicode room names with spaces are rooms of their own", async () => {
  await using server = await startTestServer();
  const cafe = [await join(server, "café au lait"), await join(server, "café au lait")];
  const tokyo = await join(server, "東京");
  const plainCafe = await join(server, "cafe au lait");
  cafe[0].sendJson({ message: "un café" });
  for (const client of cafe) {
    const frame = await client.nextJson();
    assertEquals([frame.message, frame.room], ["un café", "café au lait"]);
  }
  for (const client of [tokyo, plainCafe]) await assertNothingBefore(client, "marker");
  tokyo.sendJson({ message: "こんにちは" });
  assertEquals((await tokyo.nextJson()).room, "東京");
  for (const client of [...cafe, tokyo, plainCafe]) await client.close();
});

Deno.test("entering a room shows its last 50 messages, oldest first", async () => {
  await using server = await startTestServer(GENEROUS);
  const writer = await join(server, "busy room");
  for (let n = 1; n <= 60; n++) await say(writer, `message ${n}`);
  const reader = await join(server, "busy room");
  const shown = [];
  for (let n = 0; n < 50; n++) {
    const frame = await reader.nextJson();
    assertEquals(frame.history, true);
    shown.push(frame.message);
  }
  assertEquals(shown, Array.from({ length: 50 }, (_, i) => `message ${i + 11}`));
  await say(writer, "live again");
  assertEquals((await reader.nextJson()).message, "live again");
  await writer.close();
  await reader.close();
});

Deno.test("history survives a server restart with the same data directory", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-restart-" });
  try {
    const first = await startTestServer({ dataDir });
    const writer = await join(first, "東京");
    for (const message of ["before", "the", "restart"]) await say(writer, message);
    await first.shutdown();
    assertEquals((await writer.closed).code, 1001, "shutdown closes sockets as going away");
    await using second = await startTestServer({ dataDir });
    const reader = await join(second, "東京");
    const shown = [];
    for (let n = 0; n < 3; n++) shown.push((await reader.nextJson()).message);
    assertEquals(shown, ["before", "the", "restart"]);
    await reader.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
