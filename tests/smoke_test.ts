import { assertEquals } from "@std/assert";
import { startTestServer } from "./_support/server.ts";
import { TestSocket } from "./_support/socket.ts";

Deno.test("the echo consumer answers over a real socket", async () => {
  await using server = await startTestServer();
  const socket = await TestSocket.open(server.wsUrl("/ws/echo/"));
  socket.send("hello");
  assertEquals(await socket.next(), "You said: hello");
  socket.send("close");
  assertEquals((await socket.closed).code, 1000);
});
