/**
 * One group's retained events in memory, oldest first, with the times they were appended:
 * what the in-process streams keep and read. Trimming drops from the front through a head
 * index, so a busy stream does not shift its arrays on every append.
 *
 * Each event is kept as its JSON text, the very string its members' frames were sent as: an
 * append stores three values and makes nothing. A string is one object with no pointers, so
 * the garbage collector copies it once or twice on its way to the old generation and never
 * walks into it; an event kept as an object, with its fields, cost more CPU in the rooms
 * benchmark than the rest of the stream's work. Earlier versions kept the UTF-8 bytes of
 * `[time,event]` outside the heap, which cost an encoding per event (or per batch of them) on
 * every publish; the rooms benchmark read 0.07 to 0.15 times raw Deno's CPU more for it.
 * The store's form, `[time,event]` in UTF-8, is made when a write needs it, once per event
 * per 2 s round at most. Reads (a socket entering, a recovery) parse what they return.
 */
import { retainedAtMost, type StreamEvent, type StreamRetention } from "./contract.ts";
import { utf8Length } from "../../telemetry/utf8.ts";

const encoder = new TextEncoder();

/** Retained events as one store value: a UTF-8 JSON array of `[time, event]`. */
export interface EncodedChunk {
  /** The offset of its last event. */
  last: number;
  bytes: Uint8Array;
}

/** A stream's retained events and its counters. */
export class RetainedWindow {
  // Per retained event, in parallel, from `#head` on: its JSON text, offset and time, and the
  // text's length in UTF-8, measured as it is appended: the route's meter measures the same
  // string as it is sent, just after, and is answered without a scan (`utf8Length`).
  #texts: string[] = [];
  #offsets: number[] = [];
  #times: number[] = [];
  #bytes: number[] = [];
  #head = 0;
  /** The retained texts' length in characters: what the memory budget counts. */
  #characters = 0;
  /** The stream's epoch. */
  epoch: string;
  /** The latest offset (0 when nothing was ever appended). */
  offset: number;

  constructor(epoch: string, offset: number) {
    this.epoch = epoch;
    this.offset = offset;
  }

  /** How many events are retained. */
  get size(): number {
    return this.#offsets.length - this.#head;
  }

  /** The retained events' JSON texts, in characters (about their bytes in memory). */
  get characters(): number {
    return this.#characters;
  }

  /**
   * Appends an event already given the next offset, at `time` (ms since the epoch); `json` is
   * its JSON text when the caller has it already (else it is made here).
   */
  append(event: StreamEvent, time: number, json: string = JSON.stringify(event)): void {
    this.#texts.push(json);
    this.#characters += json.length;
    this.#offsets.push(event.offset);
    this.#times.push(time);
    this.#bytes.push(utf8Length(json)); // JSON: no lone surrogate, so exact
    this.offset = event.offset;
  }

  /** Drops what `retention` no longer keeps as of `now`; returns how many were dropped. */
  trim(retention: StreamRetention, now: number): number {
    const most = retainedAtMost(retention);
    const oldest = now - retention.seconds * 1000;
    let dropped = 0;
    while (this.size > retention.messages) {
      if (this.size <= most && this.#times[this.#head] > oldest) break;
      this.#dropFirst();
      dropped++;
    }
    this.#compact();
    return dropped;
  }

  /**
   * Drops the oldest events, whatever the retention, until at most `characters` remain (the
   * memory budget's last resort); returns how many characters that freed.
   */
  dropOldestTo(characters: number): number {
    const before = this.#characters;
    while (this.size > 0 && this.#characters > characters) this.#dropFirst();
    this.#compact();
    return before - this.#characters;
  }

  #dropFirst(): void {
    this.#characters -= this.#texts[this.#head].length;
    this.#texts[this.#head++] = ""; // its text is let go now, not at the next compaction
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#offsets.length) {
      const head = this.#head;
      this.#texts = this.#texts.slice(head);
      this.#offsets = this.#offsets.slice(head);
      this.#times = this.#times.slice(head);
      this.#bytes = this.#bytes.slice(head);
      this.#head = 0;
    }
  }

  /**
   * Retained events with an offset above `offset`, oldest first; with `pageCharacters`, only
   * the first of them that come to at most that much JSON (at least one).
   */
  after(offset: number, pageCharacters?: number): StreamEvent[] {
    const from = this.#indexAfter(offset);
    if (pageCharacters === undefined) return this.#events(from);
    let to = from;
    for (let total = 0; to < this.#offsets.length; to++) {
      total += this.#texts[to].length;
      if (total > pageCharacters && to > from) break;
    }
    return this.#events(from, to);
  }

  /** The offset of the first retained event above `offset`, if any; no event is read. */
  firstOffsetAfter(offset: number): number | undefined {
    const index = this.#indexAfter(offset);
    return index < this.#offsets.length ? this.#offsets[index] : undefined;
  }

  /** Whether the retained events above `offset` come to more than `characters` of JSON. */
  holdsMoreAfter(offset: number, characters: number): boolean {
    let total = 0;
    for (let i = this.#indexAfter(offset); i < this.#offsets.length; i++) {
      total += this.#texts[i].length;
      if (total > characters) return true;
    }
    return false;
  }

  /** The last `count` retained events, oldest first. */
  last(count: number): StreamEvent[] {
    return this.#events(Math.max(this.#head, this.#offsets.length - count));
  }

  /**
   * The retained events above `offset` as UTF-8 JSON arrays of `[time,event]`, oldest first,
   * each at most `chunkBytes` long unless one event alone is longer, with the last offset each
   * holds (for persistence: each is one store value).
   */
  chunksAfter(offset: number, chunkBytes: number): EncodedChunk[] {
    const chunks: EncodedChunk[] = [];
    let pieces: string[] = [];
    let bytes = 2; // the brackets
    for (let i = this.#indexAfter(offset); i < this.#offsets.length; i++) {
      const time = String(this.#times[i]);
      const text = this.#texts[i];
      const piece = `[${time},${text}]`;
      // Measured on its parts: the text's bytes are known, the piece is a new one not made yet.
      const pieceBytes = time.length + 3 + this.#bytes[i];
      if (pieces.length > 0 && bytes + 1 + pieceBytes > chunkBytes) {
        chunks.push({ last: this.#offsets[i - 1], bytes: encoder.encode(`[${pieces.join(",")}]`) });
        pieces = [];
        bytes = 2;
      }
      bytes += (pieces.length > 0 ? 1 : 0) + pieceBytes;
      pieces.push(piece);
    }
    if (pieces.length > 0) {
      const last = this.#offsets[this.#offsets.length - 1];
      chunks.push({ last, bytes: encoder.encode(`[${pieces.join(",")}]`) });
    }
    return chunks;
  }

  /** The oldest retained offset, or `offset + 1` when nothing is retained. */
  get firstOffset(): number {
    return this.size > 0 ? this.#offsets[this.#head] : this.offset + 1;
  }

  // The index of the first retained event above `offset`. Offsets are consecutive: the index
  // is arithmetic.
  #indexAfter(offset: number): number {
    if (this.size === 0) return this.#offsets.length;
    const first = this.#offsets[this.#head];
    return Math.min(this.#offsets.length, this.#head + Math.max(0, offset + 1 - first));
  }

  // The retained events from index `from` up to `to` (the end), parsed in one go.
  #events(from: number, to: number = this.#offsets.length): StreamEvent[] {
    if (from >= to) return [];
    const texts = this.#texts;
    const inside = from === to - 1 ? texts[from] : texts.slice(from, to).join(",");
    return JSON.parse(`[${inside}]`) as StreamEvent[];
  }
}
