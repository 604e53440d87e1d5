/**
 * Messages waiting to be written, kept as the store values they will become: the UTF-8 bytes
 * of JSON arrays, each under a size bound. `add` encodes a message's JSON text (the wire frame
 * already made it) straight into the open chunk's buffer.
 *
 * Why bytes at once rather than the texts until the write: a message waits up to a write
 * interval (seconds), long enough to outlive V8's young generation, and every text still held
 * there is copied by each minor GC on the way to the old one, pausing the server for longer. A
 * buffer's bytes live outside the JavaScript heap and are never copied; the text dies young.
 * `encodeInto` the kept buffer makes no array per message (`encode` did, and that was what made
 * per-message encoding expensive before).
 */

/** One store value: the UTF-8 bytes of a JSON array of messages. */
export interface JsonChunk {
  bytes: Uint8Array;
  /** The messages' ids, oldest first. */
  ids: string[];
}

const OPEN_BRACKET = 0x5b;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;
const FIRST_BUFFER_BYTES = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Queued messages as chunks of at most `chunkBytes` (one long message may pass it alone). */
export class JsonChunks {
  #chunkBytes: number;
  /** Chunks that reached the bound, oldest first. */
  #closed: JsonChunk[] = [];
  #closedCount = 0;
  /** The open chunk: `[` and the messages so far, separated by commas; grows as needed. */
  #buffer: Uint8Array | null = null;
  #length = 0;
  #ids: string[] = [];

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
  }

  /** How many messages wait. */
  get count(): number {
    return this.#closedCount + this.#ids.length;
  }

  /** Queues one message's JSON text. */
  add(id: string, json: string): void {
    // The most its bytes can take (three per UTF-16 unit), with a separator and the `]`.
    const most = utf8Bound(json) + 1;
    if (this.#length > 0 && this.#length + most > this.#chunkBytes) this.#close();
    const buffer = this.#room(this.#length + most);
    const separator = this.#length === 0 ? OPEN_BRACKET : COMMA;
    buffer[this.#length++] = separator;
    this.#length += encoder.encodeInto(json, buffer.subarray(this.#length)).written;
    this.#ids.push(id);
  }

  /**
   * Gives up the oldest messages, about one chunk's worth (when writing falls behind);
   * returns how many.
   */
  dropOldest(): number {
    const oldest = this.#closed.shift();
    if (oldest !== undefined) {
      this.#closedCount -= oldest.ids.length;
      return oldest.ids.length;
    }
    const count = this.#ids.length;
    this.#clearOpen();
    return count;
  }

  /** The queued messages as closed chunks, oldest first; this object is left empty. */
  take(): JsonChunk[] {
    if (this.#length > 0) this.#close();
    const chunks = this.#closed;
    this.#closed = [];
    this.#closedCount = 0;
    return chunks;
  }

  /** The last `limit` messages, parsed (for a socket entering the room before they are written). */
  last<T>(limit: number): T[] {
    if (limit <= 0) return [];
    // Newest first, parsing only as many chunks as the limit needs.
    const parts: T[][] = [];
    let count = 0;
    if (this.#length > 0) {
      parts.push(JSON.parse(`${decoder.decode(this.#openBytes())}]`) as T[]);
      count += this.#ids.length;
    }
    for (let i = this.#closed.length - 1; i >= 0 && count < limit; i--) {
      parts.push(parseJsonChunk<T>(this.#closed[i].bytes));
      count += this.#closed[i].ids.length;
    }
    return parts.reverse().flat().slice(-limit) as T[];
  }

  #openBytes(): Uint8Array {
    return this.#buffer!.subarray(0, this.#length);
  }

  // Closes the open chunk: its exact bytes are kept, the buffer starts over.
  #close(): void {
    this.#buffer![this.#length++] = CLOSE_BRACKET;
    this.#closed.push({ bytes: this.#openBytes().slice(), ids: this.#ids });
    this.#closedCount += this.#ids.length;
    this.#clearOpen();
  }

  #clearOpen(): void {
    this.#length = 0;
    this.#ids = [];
  }

  // The open buffer with room for `bytes` in all; grown by doubling, so a busy room's chunk
  // is copied a few times per round at most.
  #room(bytes: number): Uint8Array {
    const buffer = this.#buffer;
    if (buffer !== null && buffer.length >= bytes) return buffer;
    let size = Math.max(FIRST_BUFFER_BYTES, buffer?.length ?? 0);
    while (size < bytes) size *= 2;
    const grown = new Uint8Array(size);
    if (buffer !== null) grown.set(buffer.subarray(0, this.#length));
    return this.#buffer = grown;
  }
}

/** Parses a closed chunk's bytes (as read back from the store). */
export function parseJsonChunk<T>(bytes: Uint8Array): T[] {
  return JSON.parse(decoder.decode(bytes)) as T[];
}

// UTF-8 takes at most three bytes per UTF-16 unit; one more for the comma or bracket.
function utf8Bound(text: string): number {
  return 3 * text.length + 1;
}
