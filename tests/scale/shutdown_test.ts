/**
 * A graceful stop writes what the app still holds: chat history accepted a moment before
 * SIGTERM is in the room after a restart (default configuration, Deno KV under DATA_DIR).
 */
import { assertEquals, assertMatch } from "@std/assert";
import { TestSocket } from "../_support/socket.ts";
import { WAIT } from "./_clients.ts";
import { startServerProcess } from "./_process.ts";

// SIGHUP: the terminal it ran in closed (an SSH session dropped), which ended it on the spot.
for (const [signal, code] of [["SIGTERM", 1012], ["SIGHUP", 1001]] as const) {
  Deno.test(`a message sent just before ${signal} is in the room's history after a restart`, async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "shutdown-test-" });
    try {
      {
        await using server = await startServerProcess({ DATA_DIR: dataDir });
        const writer = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
        writer.sendJson({ message: "the last word" });
        // Delivered, so accepted: history writes it within 2 s, unless the stop does it first.
        await writer.nextMatching((frame) => frame.message === "the last word", WAIT);
        server.signal(signal);
        assertEquals((await writer.closed).code, code);
        assertEquals((await server.status).code, 0);
        assertMatch(server.output(), new RegExp(`${signal}: stopped`));
      }
      await using again = await startServerProcess({ DATA_DIR: dataDir });
      const reader = await TestSocket.open(again.wsUrl("/ws/chat/lobby/"));
      const first = await reader.nextMatching(() => true, WAIT);
      assertEquals([first.message, first.history], ["the last word", true]);
      await reader.close();
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  });
}

// Deno's own shutdown closes every socket with 1001 too, but then each one read as closed by
// its client (1005): the log, the close count and the consumer's `disconnect` said so.
for (const [signal, code] of [["SIGINT", 1001], ["SIGTERM", 1012], ["SIGHUP", 1001]] as const) {
  Deno.test(`a stop on ${signal} logs each socket as closed by the server with ${code}`, async () => {
    await using server = await startServerProcess();
    const chat = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
    server.signal(signal);
    assertEquals((await chat.closed).code, code);
    assertEquals((await server.status).code, 0);
    assertMatch(
      server.output(),
      new RegExp(`DISCONNECT /ws/chat/lobby/ \\S+ \\(closed by the server: ${code}\\b`),
    );
  });
}
