/** The stream client's recovery: fresh streams, resumes, duplicates, histories, batched frames. */
import { assertEquals } from "@std/assert";
import { ndjsonFrames } from "../../client/channels_client.js";
import { drop, type FakeSocket, open } from "./_fake_socket.ts";
import { feed, start } from "./_channels_client_support.ts";

function chat(offset: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: "chat.message", message: `m${offset}`, offset, ...extra };
}

function query(socket: FakeSocket): Record<string, string> {
  return Object.fromEntries(new URL(socket.url).searchParams);
}

Deno.test("a first connect asks for a fresh stream and keeps the URL's own parameters", async () => {
  const { sockets } = start("ws://chat.test/ws/chat/lobby/?presence=1", { batch: true });
  const socket = await sockets.next();
  assertEquals(new URL(socket.url).pathname, "/ws/chat/lobby/");
  assertEquals(query(socket), { presence: "1", stream: "1", batch: "1" });
});

Deno.test("an http URL becomes a WebSocket URL", async () => {
  const { sockets } = start("https://chat.test/ws/chat/caf%C3%A9/");
  const socket = await sockets.next();
  assertEquals(socket.url, "wss://chat.test/ws/chat/caf%C3%A9/?stream=1");
});

Deno.test("a reconnect resumes after the last message delivered, in the same epoch", async () => {
  const { stream, sockets, messages, recoveries } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 2 });
  feed(first, chat(1, { history: true }), chat(2, { history: true }), chat(3));
  assertEquals(stream.offset, 3);
  drop(first);

  const second = await sockets.next();
  assertEquals(query(second), { presence: "1", epoch: "e1", since: "3" });
  open(second);
  feed(second, { type: "recovered", complete: true, epoch: "e1", offset: 5 });
  feed(second, chat(4, { recovered: true }), chat(5, { recovered: true }));
  assertEquals(messages, ["m1", "m2", "m3", "m4", "m5"]);
  assertEquals(recoveries.map((r) => [r.complete, r.fresh, r.offset]), [
    [true, true, 2],
    [true, false, 5],
  ]);
});

Deno.test("a message at or below the last delivered offset is dropped as a duplicate", async () => {
  const { sockets, messages } = start();
  const socket = await sockets.next();
  open(socket);
  feed(socket, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  feed(socket, chat(1), chat(2), chat(2), chat(1), chat(3));
  assertEquals(messages, ["m1", "m2", "m3"]);
});

Deno.test("a connection lost before its history arrived resumes where the history starts", async () => {
  const { sockets, messages } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 120 });
  drop(first);
  // The history would have been 71..120: asking from 70 brings exactly those, nothing twice.
  const second = await sockets.next();
  assertEquals(query(second).since, "70");

  assertEquals(messages, []);
});

Deno.test("a connection lost during a history longer than historySize resumes after the last one shown", async () => {
  // The route keeps a history of 100 (StreamFollowingOptions.historySize); the client's is 50.
  const { sockets, messages } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 200 });
  for (let offset = 101; offset <= 120; offset++) feed(first, chat(offset, { history: true }));
  drop(first);
  const second = await sockets.next();
  assertEquals(query(second).since, "120");
  open(second);
  feed(second, { type: "recovered", complete: true, epoch: "e1", offset: 200 });
  for (let offset = 121; offset <= 200; offset++) feed(second, chat(offset));
  assertEquals(messages, Array.from({ length: 100 }, (_, i) => `m${101 + i}`));
});

Deno.test("a room with fewer messages than its history resumes from its start", async () => {
  const { sockets } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 3 });
  drop(first);
  assertEquals(query(await sockets.next()).since, "0");
});

Deno.test("an empty room's position is kept: what came while away is recovered", async () => {
  const { sockets } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  drop(first);
  assertEquals(query(await sockets.next()), { presence: "1", epoch: "e1", since: "0" });
});

Deno.test("an incomplete recovery is reported and the history comes again from the new epoch", async () => {
  const { sockets, messages, recoveries } = start();
  const first = await sockets.next();
  open(first);
  feed(first, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  feed(first, chat(1), chat(2), chat(3));
  drop(first);

  const second = await sockets.next();
  open(second);
  feed(second, {
    type: "recovered",
    complete: false,
    epoch: "e2",
    offset: 2,
    reason: "epoch changed",
  });
  // New epoch, offsets from 1 again: not duplicates.
  feed(second, chat(1, { history: true, message: "n1" }), chat(2, { message: "n2" }));
  assertEquals(messages, ["m1", "m2", "m3", "n1", "n2"]);
  assertEquals(recoveries[1], {
    complete: false,
    fresh: false,
    epoch: "e2",
    offset: 2,
    reason: "epoch changed",
  });
  drop(second);
  assertEquals(query(await sockets.next()), { presence: "1", epoch: "e2", since: "2" });
});

Deno.test("a history lost while the connection is open is reported, and the new epoch delivered", async () => {
  const { sockets, messages, recoveries } = start();
  const socket = await sockets.next();
  open(socket);
  feed(socket, { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 });
  feed(socket, chat(1), chat(2), chat(3));
  // What the server sends when Redis restarted empty: the verdict, then the new epoch's history.
  feed(socket, { type: "recovered", complete: false, epoch: "e2", offset: 2, reason: "lost" });
  feed(
    socket,
    chat(1, { history: true, message: "n1" }),
    chat(2, { history: true, message: "n2" }),
  );
  feed(socket, chat(2, { message: "n2" }), chat(3, { message: "n3" }));
  assertEquals(messages, ["m1", "m2", "m3", "n1", "n2", "n3"]);
  assertEquals(recoveries.map((r) => [r.complete, r.epoch]), [[true, "e1"], [false, "e2"]]);
  drop(socket);
  assertEquals(query(await sockets.next()), { presence: "1", epoch: "e2", since: "3" });
});

Deno.test("a batched message carries several frames, one JSON object a line, in order", async () => {
  const { sockets, messages, frames } = start(undefined, { batch: true });
  const socket = await sockets.next();
  open(socket);
  const lines = [
    { type: "recovered", complete: true, fresh: true, epoch: "e1", offset: 0 },
    chat(1),
    { type: "presence.diff", joins: ["ada"], leaves: [] },
    chat(2, { message: "two\nlines" }),
  ].map((frame) => JSON.stringify(frame));
  socket.onmessage?.({ data: lines.join("\n") + "\n" });
  socket.onmessage?.({ data: JSON.stringify(chat(3)) });
  assertEquals(messages, ["m1", "two\nlines", "m3"]);
  assertEquals(frames, [{ type: "presence.diff", joins: ["ada"], leaves: [] }]);
});

Deno.test("batched data that is not JSON objects is skipped line by line", () => {
  assertEquals(ndjsonFrames('{"a":1}\nnot json\n[1]\n\n{"b":2}'), [{ a: 1 }, { b: 2 }]);
  assertEquals(ndjsonFrames(new Uint8Array([123, 125])), []);
});
