import { assertEquals } from "@std/assert";
import { serveRaw } from "../../bench/raw_server.ts";

// The bench's baseline must do what ours does in the relay scenario, or the ratio means nothing.

function open(port: number, path: string): Promise<{ socket: WebSocket; frames: string[] }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  const frames: string[] = [];
  socket.onmessage = (event) => frames.push(String(event.data));
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve({ socket, frames });
    socket.onerror = () => reject(new Error(`${path} did not open`));
  });
}

function nextFrame(socket: WebSocket): Promise<string> {
  return new Promise((resolve) =>
    socket.addEventListener("message", (event) => resolve(String(event.data)), { once: true })
  );
}

Deno.test("the raw baseline relays a text frame unchanged to its group only, the sender's included", async () => {
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = serveRaw(0, resolve);
  const port = await listening;
  const sender = await open(port, "/ws/g1/");
  const member = await open(port, "/ws/g1/");
  const other = await open(port, "/ws/g2/");
  const chat = await open(port, "/ws/chat/g1/");
  // The raw server adds a socket to its group on open, just after the client sees it open:
  // a round trip on each socket's own group shows it has joined.
  for (const client of [sender, member, other]) {
    const echoed = nextFrame(client.socket);
    client.socket.send("joined?");
    await echoed;
  }
  const text = '{"message": "not parsed: relayed as it came"} é';
  const atSender = nextFrame(sender.socket);
  const atMember = nextFrame(member.socket);
  sender.socket.send(text);
  assertEquals(await atSender, text);
  assertEquals(await atMember, text);
  // The other group and the chat room of the same name got nothing but their own frames.
  const last = nextFrame(other.socket);
  other.socket.send("own");
  assertEquals(await last, "own");
  assertEquals(other.frames.filter((frame) => frame === text), []);
  assertEquals(chat.frames, []);
  for (const client of [sender, member, other, chat]) client.socket.close();
  await server.shutdown();
});
