import { assertEquals } from "@std/assert";
import { JsonChunks, parseJsonChunk } from "../../storage/_json_chunks.ts";

const message = (n: number, text = `message ${n}`) => ({ id: `id-${n}`, text });

function addAll(chunks: JsonChunks, messages: { id: string; text: string }[]): void {
  for (const m of messages) chunks.add(m.id, JSON.stringify(m));
}

Deno.test("chunks are closed JSON arrays of the messages, in order", () => {
  const chunks = new JsonChunks(48 * 1024);
  const messages = [message(1), message(2, "東京 café 🎉"), message(3, '"quoted"\n')];
  addAll(chunks, messages);
  assertEquals(chunks.count, 3);
  const taken = chunks.take();
  assertEquals(taken.length, 1);
  assertEquals(taken[0].ids, ["id-1", "id-2", "id-3"]);
  assertEquals(parseJsonChunk(taken[0].bytes), messages);
  assertEquals(chunks.count, 0);
  assertEquals(chunks.take(), []);
});

Deno.test("a chunk closes before it would pass the byte limit; one long message still fits", () => {
  const chunks = new JsonChunks(1000);
  const messages = Array.from({ length: 40 }, (_, n) => message(n, "é".repeat(40)));
  messages.push(message(99, "東".repeat(2000))); // alone over the limit
  addAll(chunks, messages);
  const taken = chunks.take();
  for (const chunk of taken.slice(0, -1)) assertEquals(chunk.bytes.length <= 1000, true);
  assertEquals(taken.at(-1)!.ids, ["id-99"]);
  assertEquals(taken.flatMap((chunk) => parseJsonChunk(chunk.bytes)), messages);
});

Deno.test("the last messages are read back before the chunks are closed", () => {
  const chunks = new JsonChunks(300);
  const messages = Array.from({ length: 30 }, (_, n) => message(n));
  addAll(chunks, messages);
  assertEquals(chunks.last(7), messages.slice(-7));
  assertEquals(chunks.last(100), messages);
});

Deno.test("giving up the oldest chunk drops its messages and counts them", () => {
  const chunks = new JsonChunks(300);
  const messages = Array.from({ length: 30 }, (_, n) => message(n));
  addAll(chunks, messages);
  const dropped = chunks.dropOldest();
  assertEquals(dropped > 0 && dropped < 30, true);
  assertEquals(chunks.count, 30 - dropped);
  assertEquals(chunks.last(100), messages.slice(dropped));
});

Deno.test("with no chunk closed yet, giving up drops every waiting message", () => {
  const chunks = new JsonChunks(48 * 1024);
  addAll(chunks, Array.from({ length: 5 }, (_, n) => message(n)));
  assertEquals(chunks.dropOldest(), 5);
  assertEquals(chunks.count, 0);
  assertEquals(chunks.last(10), []);
  assertEquals(chunks.take(), []);
  const later = message(9);
  addAll(chunks, [later]);
  assertEquals(chunks.take().flatMap((chunk) => parseJsonChunk(chunk.bytes)), [later]);
});
