/**
 * One group's retained events in memory, oldest first, with the times they were appended:
 * what the in-process streams keep and read. Trimming drops from the front through a head
 * index, so a busy stream does not shift its arrays on every append.
 *
 * Events are kept as the UTF-8 bytes of `[time,event]` (the form the store keeps them in), in
 * blocks outside the JavaScript heap, comma-separated within a block so that a run of events is
 * already the inside of a JSON array (written to the store with one copy per block), with
 * numbers alone per event in the heap: a retained event outlives V8's young generation, and an
 * object (with its strings and its JSON text) held that long is copied by minor GCs on its way
 * to the old generation, then marked by every major one. In the rooms benchmark, events kept as
 * objects cost more CPU than the rest of the stream's work. The latest events wait as text, at
 * most 64 of them, and are encoded together when something reads or writes them: one encoding
 * per batch costs less than one per event. Reads (a socket entering, a recovery) parse what
 * they return.
 */
import { retainedAtMost, type StreamEvent, type StreamRetention } from "./contract.ts";

// Events of a busy stream share blocks of this size; a larger event gets a block of its own.
const BLOCK_BYTES = 64 * 1024;
const OPEN_BRACKET = 0x5b;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;
// Most events that wait to be encoded (see `#pending`).
const SETTLE_EVERY = 64;
const NON_ASCII = /[\u0080-\uffff]/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Retained events as one store value: a UTF-8 JSON array of `[time, event]`. */
export interface EncodedChunk {
  /** The offset of its last event. */
  last: number;
  bytes: Uint8Array;
}

/** A stream's retained events and its counters. */
export class RetainedWindow {
  /** Blocks of encoded events; `#blocks[0]` is block number `#firstBlock`. */
  #blocks: Uint8Array[] = [];
  #firstBlock = 0;
  /** Bytes used in the last block. */
  #used = 0;
  // Per retained event, in parallel: its offset, block number, first and end byte, and time.
  #offsets: number[] = [];
  #blockOf: number[] = [];
  #starts: number[] = [];
  #ends: number[] = [];
  #times: number[] = [];
  #head = 0;
  /**
   * `[time,event]` of the latest events, not encoded yet: they are encoded together, when a
   * read or a write needs them or when {@linkcode SETTLE_EVERY} wait, which costs less per
   * event than one encoding each. `#blockOf`, `#starts` and `#ends` cover the events before them.
   */
  #pending: string[] = [];
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

  /**
   * Appends an event already given the next offset, at `time` (ms since the epoch); `json` is
   * its JSON text when the caller has it already (else it is made here).
   */
  append(event: StreamEvent, time: number, json: string = JSON.stringify(event)): void {
    this.#pending.push(`[${time},${json}]`);
    this.#offsets.push(event.offset);
    this.#times.push(time);
    this.offset = event.offset;
    if (this.#pending.length >= SETTLE_EVERY) this.#settle();
  }

  // Encodes the events appended since the last time, in one go when they are all ASCII (a
  // byte per UTF-16 unit, so each event's place follows from its length), else one by one.
  #settle(): void {
    const lines = this.#pending;
    if (lines.length === 0) return;
    this.#pending = [];
    const text = lines.length === 1 ? lines[0] : lines.join(",");
    if (NON_ASCII.test(text)) {
      for (const line of lines) this.#encodeOne(line);
      return;
    }
    const block = this.#blockFor(text.length);
    const blockNumber = this.#firstBlock + this.#blocks.length - 1;
    let at = this.#used;
    encoder.encodeInto(text, block.subarray(at));
    this.#used += text.length;
    for (const line of lines) {
      this.#blockOf.push(blockNumber);
      this.#starts.push(at);
      at += line.length;
      this.#ends.push(at);
      at++; // the comma
    }
  }

  #encodeOne(line: string): void {
    // UTF-8 takes at most three bytes per UTF-16 unit.
    const block = this.#blockFor(3 * line.length);
    const start = this.#used;
    this.#used += encoder.encodeInto(line, block.subarray(start)).written;
    this.#blockOf.push(this.#firstBlock + this.#blocks.length - 1);
    this.#starts.push(start);
    this.#ends.push(this.#used);
  }

  // The block the next `most` bytes go in, after the comma that separates them from the
  // block's events (a new block when they do not fit).
  #blockFor(most: number): Uint8Array {
    let block = this.#blocks.at(-1);
    if (block === undefined || this.#used + 1 + most > block.length) {
      block = new Uint8Array(Math.max(BLOCK_BYTES, most));
      this.#blocks.push(block);
      this.#used = 0;
    } else if (this.#used > 0) block[this.#used++] = COMMA;
    return block;
  }

  /** Drops what `retention` no longer keeps as of `now`; returns how many were dropped. */
  trim(retention: StreamRetention, now: number): number {
    const most = retainedAtMost(retention);
    const oldest = now - retention.seconds * 1000;
    let dropped = 0;
    while (this.size > retention.messages) {
      if (this.size <= most && this.#times[this.#head] > oldest) break;
      this.#head++;
      dropped++;
    }
    if (dropped > 0) {
      this.#forgetUnencoded();
      this.#releaseBlocks();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#offsets.length) {
      const head = this.#head;
      this.#offsets = this.#offsets.slice(head);
      this.#blockOf = this.#blockOf.slice(head);
      this.#starts = this.#starts.slice(head);
      this.#ends = this.#ends.slice(head);
      this.#times = this.#times.slice(head);
      this.#head = 0;
    }
    return dropped;
  }

  // Events dropped before they were encoded never are: they leave the pending lines, and hold
  // places that nothing reads (they are before the head) in the per-event arrays.
  #forgetUnencoded(): void {
    const unencoded = this.#head - this.#blockOf.length;
    if (unencoded <= 0) return;
    this.#pending.splice(0, unencoded);
    for (let i = 0; i < unencoded; i++) {
      this.#blockOf.push(-1);
      this.#starts.push(0);
      this.#ends.push(0);
    }
  }

  /** Retained events with an offset above `offset`, oldest first. */
  after(offset: number): StreamEvent[] {
    this.#settle();
    return this.#entries(this.#indexAfter(offset)).map(([, event]) => event);
  }

  /** The last `count` retained events, oldest first. */
  last(count: number): StreamEvent[] {
    this.#settle();
    const from = Math.max(this.#head, this.#offsets.length - count);
    return this.#entries(from).map(([, event]) => event);
  }

  /**
   * The retained events above `offset` as UTF-8 JSON arrays of `[time,event]`, oldest first,
   * each at most `chunkBytes` long unless one event alone is longer, with the last offset each
   * holds (for persistence: each is one store value).
   */
  chunksAfter(offset: number, chunkBytes: number): EncodedChunk[] {
    this.#settle();
    const chunks: EncodedChunk[] = [];
    const end = this.#offsets.length;
    for (let from = this.#indexAfter(offset); from < end;) {
      // Events from..to-1 fit: the brackets, each event and the comma before all but the first.
      let to = from + 1;
      let bytes = 2 + this.#ends[from] - this.#starts[from];
      while (to < end && bytes + 1 + this.#ends[to] - this.#starts[to] <= chunkBytes) {
        bytes += 1 + this.#ends[to] - this.#starts[to];
        to++;
      }
      chunks.push({ last: this.#offsets[to - 1], bytes: this.#joined(from, to, bytes) });
      from = to;
    }
    return chunks;
  }

  // `[` + events from..to-1 + `]` in `length` bytes: events of one block are adjacent, commas
  // between them included, so each block's run is one copy.
  #joined(from: number, to: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    out[0] = OPEN_BRACKET;
    let at = 1;
    for (let i = from; i < to;) {
      const block = this.#blockOf[i];
      let last = i;
      while (last + 1 < to && this.#blockOf[last + 1] === block) last++;
      if (at > 1) out[at++] = COMMA;
      const run = this.#blocks[block - this.#firstBlock].subarray(
        this.#starts[i],
        this.#ends[last],
      );
      out.set(run, at);
      at += run.length;
      i = last + 1;
    }
    out[at] = CLOSE_BRACKET;
    return out;
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

  // `[time, event]` of every retained event from index `from`, parsed in one go.
  #entries(from: number): [number, StreamEvent][] {
    if (from >= this.#offsets.length) return [];
    const parts: string[] = [];
    for (let i = from; i < this.#offsets.length; i++) parts.push(decoder.decode(this.#bytes(i)));
    return JSON.parse(`[${parts.join(",")}]`) as [number, StreamEvent][];
  }

  #bytes(index: number): Uint8Array {
    const block = this.#blocks[this.#blockOf[index] - this.#firstBlock];
    return block.subarray(this.#starts[index], this.#ends[index]);
  }

  // Lets go of the blocks that hold no retained event any more.
  #releaseBlocks(): void {
    const keep = this.#head < this.#blockOf.length
      ? this.#blockOf[this.#head] - this.#firstBlock
      : this.#blocks.length - 1; // the last block stays: the next event goes on in it
    if (keep <= 0) return;
    this.#blocks.splice(0, keep);
    this.#firstBlock += keep;
  }
}
