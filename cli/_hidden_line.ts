/**
 * A line typed on a raw terminal without echo (a password): the bytes the terminal sends, made
 * into the text the person saw themselves type. Backspace takes back one whole character, not
 * one byte of it (`é` is two), and the escape sequences of arrow and function keys are no text.
 */

/** What a byte did to the line. */
export type HiddenLineState = "more" | "done" | "cancelled";

const ENTER = new Set([10, 13]);
const CANCEL = new Set([3, 4]); // Ctrl-C, Ctrl-D
const BACKSPACE = new Set([8, 127]);
const KILL_LINE = 21; // Ctrl-U, as a terminal's line editing has it
const ESCAPE = 27;

/** The line so far; `take` each byte the terminal sends, in order. */
export class HiddenLine {
  #characters: string[] = [];
  /** The bytes of a UTF-8 character still waiting for the rest of it. */
  #partial: number[] = [];
  #partialLength = 0;
  /** Inside an escape sequence: after ESC, or after `ESC [` / `ESC O` until its final byte. */
  #escape: "none" | "started" | "sequence" = "none";

  /** The text typed, once `take` said "done". */
  get text(): string {
    return this.#characters.join("");
  }

  /** Takes one byte: "done" at Enter, "cancelled" at Ctrl-C or Ctrl-D, else "more". */
  take(byte: number): HiddenLineState {
    // Whatever came before: no escape sequence nor character holds these bytes.
    if (ENTER.has(byte)) return "done";
    if (CANCEL.has(byte)) return "cancelled";
    if (this.#escape !== "none") return this.#inEscape(byte);
    if (this.#partialLength > 0 && byte >= 0x80 && byte < 0xc0) {
      this.#partial.push(byte);
      if (this.#partial.length === this.#partialLength) this.#endCharacter();
      return "more";
    }
    this.#partial = []; // a character cut short by another byte is no character
    this.#partialLength = 0;
    if (BACKSPACE.has(byte)) this.#characters.pop();
    else if (byte === KILL_LINE) this.#characters = [];
    else if (byte === ESCAPE) this.#escape = "started";
    else if (byte >= 0x20 && byte < 0x7f) this.#characters.push(String.fromCharCode(byte));
    else if (byte >= 0xc2 && byte <= 0xf4) {
      this.#partial = [byte];
      this.#partialLength = byte < 0xe0 ? 2 : byte < 0xf0 ? 3 : 4;
    }
    // Other control bytes (Tab among them) and stray continuation bytes are no text.
    return "more";
  }

  #endCharacter(): void {
    const character = new TextDecoder("utf-8", { fatal: true });
    try {
      this.#characters.push(character.decode(new Uint8Array(this.#partial)));
    } catch {
      // Not UTF-8 after all (an overlong form, a surrogate): no character.
    }
    this.#partial = [];
    this.#partialLength = 0;
  }

  // `ESC [ 1 ; 5 D` (Ctrl-Left) and the like end at a byte from 0x40 to 0x7e; `ESC x` (Alt-x)
  // is one key too.
  #inEscape(byte: number): HiddenLineState {
    if (this.#escape === "started") {
      this.#escape = byte === 0x5b || byte === 0x4f ? "sequence" : "none";
    } else if (byte >= 0x40 && byte <= 0x7e) this.#escape = "none";
    return "more";
  }
}
