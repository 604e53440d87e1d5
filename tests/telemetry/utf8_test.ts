import { assertEquals } from "@std/assert";
import { utf8Length } from "../../telemetry/utf8.ts";

const encoded = (text: string) => new TextEncoder().encode(text).byteLength;

Deno.test("a text's UTF-8 length is its encoding's, whichever texts were measured before it", () => {
  const texts = [
    '{"type":"chat.message","message":"hi"}',
    "",
    "a",
    "é",
    "a€😀",
    "x".repeat(300) + "é",
    "é" + "x".repeat(300),
    "\u007f",
    "\u0080",
    "line\nbreak\n",
  ];
  // Each in turn, each twice in a row, and the same text again as another string.
  for (const text of texts) assertEquals(utf8Length(text), encoded(text), JSON.stringify(text));
  for (const text of texts) {
    assertEquals(utf8Length(text), encoded(text));
    assertEquals(utf8Length(text), encoded(text));
    assertEquals(utf8Length([...text].join("")), encoded(text));
  }
  for (const text of [...texts].reverse()) assertEquals(utf8Length(text), encoded(text));
});

Deno.test("a lone surrogate counts as 2 bytes, a pair as 4", () => {
  assertEquals(utf8Length("\ud800"), 2);
  assertEquals(utf8Length("a\udc00b"), 4);
  assertEquals(utf8Length("😀"), 4);
});

Deno.test("a long text counts as a short one does, lone surrogates and all", () => {
  // Long texts are counted by the encoder (see utf8.ts): the same bytes, a lone surrogate 2.
  const long = "x".repeat(300);
  assertEquals(utf8Length(long + "\ud800"), 302);
  assertEquals(utf8Length("\udc00" + long + "😀"), 306);
  assertEquals(utf8Length(long + "é€😀"), 309);
  // Longer than the encoder's scratch space holds, in three-byte characters.
  assertEquals(utf8Length("€".repeat(20_000)), 60_000);
  assertEquals(utf8Length("x".repeat(100_000)), 100_000);
});
