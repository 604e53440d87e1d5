/** A hidden line's editing: what a person typed, as they meant it, from a raw terminal's bytes. */
import { assertEquals } from "@std/assert";
import { HiddenLine, type HiddenLineState } from "../../cli/_hidden_line.ts";

function typed(keys: string | Uint8Array): { state: HiddenLineState; text: string } {
  const bytes = typeof keys === "string" ? new TextEncoder().encode(keys) : keys;
  const line = new HiddenLine();
  let state: HiddenLineState = "more";
  for (const byte of bytes) {
    state = line.take(byte);
    if (state !== "more") break;
  }
  return { state, text: line.text };
}

Deno.test("Backspace takes back one whole character, whatever its length in bytes", () => {
  assertEquals(typed("passé\x7fe\r"), { state: "done", text: "passe" });
  assertEquals(typed("key🔑\x7f\x7fz\r"), { state: "done", text: "kez" });
  assertEquals(typed("ab\x08c\r").text, "ac");
});

Deno.test("arrow, function and Alt keys type nothing; Ctrl-U clears the line", () => {
  assertEquals(typed("ab\x1b[D\x1b[1;5C\x1bOPc\x1bxd\r").text, "abcd");
  assertEquals(typed("wrong\x15right\r").text, "right");
  assertEquals(typed("tab\there\r").text, "tabhere");
});

Deno.test("Ctrl-C and Ctrl-D cancel, even inside an escape sequence; Enter ends it", () => {
  assertEquals(typed("abc\x03").state, "cancelled");
  assertEquals(typed("abc\x1b[\x04").state, "cancelled");
  assertEquals(typed("abc\x1b\r"), { state: "done", text: "abc" });
  assertEquals(typed("abc").state, "more");
});

Deno.test("bytes that are no UTF-8 character are dropped, and what follows them is kept", () => {
  // A lead byte cut short, a stray continuation byte, an overlong "/" and a lone surrogate.
  const bytes = [0x61, 0xc3, 0x62, 0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x63, 0x0d];
  assertEquals(typed(new Uint8Array(bytes)), { state: "done", text: "abc" });
});
