import { assertEquals } from "@std/assert";
import { RetainedWindow } from "../../../layers/streams/_window.ts";
import type { StreamEvent } from "../../../layers/streams/contract.ts";

const decoder = new TextDecoder();
const event = (offset: number, message: string): StreamEvent =>
  ({ type: "chat.message", offset, epoch: "e1", message }) as StreamEvent;

function windowOf(texts: string[]): RetainedWindow {
  const window = new RetainedWindow("e1", 0);
  texts.forEach((text, i) => window.append(event(i + 1, text), 1000 + i));
  return window;
}

Deno.test("the chunks to store are JSON arrays of [time, event], in order, within the byte limit", () => {
  const texts = Array.from({ length: 300 }, (_, i) => `message ${i} ${"é東🎉".repeat(i % 7)}`);
  const window = windowOf(texts);
  const chunks = window.chunksAfter(0, 1000);
  const stored = chunks.flatMap((chunk) => JSON.parse(decoder.decode(chunk.bytes)));
  assertEquals(stored, texts.map((text, i) => [1000 + i, event(i + 1, text)]));
  for (const chunk of chunks) {
    assertEquals(chunk.bytes.length <= 1000, true);
    const inside = JSON.parse(decoder.decode(chunk.bytes)) as [number, StreamEvent][];
    assertEquals(chunk.last, inside.at(-1)![1].offset);
  }
  // Only what comes after the offset already written.
  const later = window.chunksAfter(250, 1000).flatMap((c) => JSON.parse(decoder.decode(c.bytes)));
  assertEquals(later.map(([, e]: [number, StreamEvent]) => e.offset), range(251, 300));
  assertEquals(window.chunksAfter(300, 1000), []);
});

Deno.test("chunks of large events stay within the limit; one event longer than it stands alone", () => {
  const texts = Array.from({ length: 30 }, (_, i) => `${i}:` + "x".repeat(10_000));
  texts.push("y".repeat(70_000)); // alone over the limit and over a block
  const window = windowOf(texts);
  const chunks = window.chunksAfter(0, 48 * 1024);
  const stored = chunks.flatMap((chunk) => JSON.parse(decoder.decode(chunk.bytes)));
  assertEquals(stored.map(([, e]: [number, StreamEvent]) => e.message), texts);
  assertEquals(chunks.at(-1)!.last, 31);
  assertEquals(JSON.parse(decoder.decode(chunks.at(-1)!.bytes)).length, 1);
  // Reads see the same events.
  assertEquals(window.last(31).map((e) => e.message), texts);
});

Deno.test("events read, written and trimmed at uneven points stay whole and in order", () => {
  const window = new RetainedWindow("e1", 0);
  const kept: string[] = [];
  const retention = { messages: 50, seconds: 0 };
  // Reads, writes and trims at uneven points, with ASCII and non-ASCII events mixed.
  for (let i = 1; i <= 400; i++) {
    const text = i > 200 && i < 230 && i % 3 === 0 ? `émoji 🎉 ${i}` : `plain ${i}`;
    window.append(event(i, text), 1000 + i);
    kept.push(text);
    if (i % 37 === 0) {
      window.trim(retention, 10_000);
      kept.splice(0, kept.length - 50);
      assertEquals(window.last(50).map((e) => e.message), kept);
    }
    if (i % 101 === 0) {
      const stored = window.chunksAfter(i - 20, 2000)
        .flatMap((chunk) => JSON.parse(decoder.decode(chunk.bytes)))
        .map(([, e]: [number, StreamEvent]) => e.message);
      assertEquals(stored, kept.slice(-20));
    }
  }
  assertEquals(window.after(390).map((e) => e.offset), range(391, 400));
});

Deno.test("events trimmed as soon as they came are gone, and the rest read whole", () => {
  const window = new RetainedWindow("e1", 0);
  // A window of 3: most events are dropped right after they were appended.
  for (let i = 1; i <= 200; i++) {
    window.append(event(i, `m${i} ${"ü".repeat(i % 3)}`), 1000 + i);
    window.trim({ messages: 3, seconds: 0 }, 10_000);
  }
  assertEquals(window.size, 3);
  assertEquals(window.after(0).map((e) => e.offset), [198, 199, 200]);
  const stored = window.chunksAfter(0, 1000).flatMap((c) => JSON.parse(decoder.decode(c.bytes)));
  assertEquals(stored.map(([time]: [number]) => time), [1198, 1199, 1200]);
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
