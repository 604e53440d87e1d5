/**
 * Messages waiting to be written, kept as the UTF-8 bytes of JSON arrays: each chunk is one
 * store value, and `add` encodes a message's JSON text (the wire frame already made it) into the
 * open chunk as it arrives. Bytes live outside the JavaScript heap: a message waits up to a write
 * interval, long enough to outlive V8's young generation, and a string held that long is copied
 * by every minor GC on its way to the old one. Deno KV stores a `Uint8Array` as it is.
 *
 * Holding the strings and encoding once per round instead was tried; in a paired rooms benchmark
 * it cost the same CPU and made each minor GC copy about twice as much, so encoding stayed here.
 */

/** One store value in the making: `[` then the messages' JSON texts, comma-separated. */
export interface JsonChunk {
  /** The value's bytes: `[...]` once {@linkcode JsonChunks.take} has closed it. */
  bytes: Uint8Array;
  length: number;
  /** The messages' ids, oldest first. */
  ids: string[];
}

const OPEN_BRACKET = 0x5b;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;
const FIRST_CAPACITY = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Append-only chunks of at most about `chunkBytes` each (one message may make a chunk longer). */
export class JsonChunks {
  #chunks: JsonChunk[] = [];
  #chunkBytes: number;
  #count = 0;

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
  }

  /** How many messages wait. */
  get count(): number {
    return this.#count;
  }

  /** Appends one message's JSON text. */
  add(id: string, json: string): void {
    // UTF-8 takes at most three bytes per UTF-16 unit; one more for the comma or bracket.
    const chunk = this.#room(3 * json.length + 1);
    if (chunk.ids.length > 0) chunk.bytes[chunk.length++] = COMMA;
    chunk.length += encoder.encodeInto(json, chunk.bytes.subarray(chunk.length)).written;
    chunk.ids.push(id);
    this.#count++;
  }

  /** Appends one message's JSON text, already encoded as UTF-8. */
  addEncoded(id: string, bytes: Uint8Array): void {
    const chunk = this.#room(bytes.length + 1); // one more for the comma
    if (chunk.ids.length > 0) chunk.bytes[chunk.length++] = COMMA;
    chunk.bytes.set(bytes, chunk.length);
    chunk.length += bytes.length;
    chunk.ids.push(id);
    this.#count++;
  }

  // The open chunk, with room for `most` more bytes, a comma and the closing bracket.
  #room(most: number): JsonChunk {
    let chunk = this.#chunks.at(-1);
    if (chunk === undefined || (chunk.ids.length > 0 && chunk.length + most > this.#chunkBytes)) {
      chunk = { bytes: new Uint8Array(Math.max(FIRST_CAPACITY, most + 2)), length: 1, ids: [] };
      chunk.bytes[0] = OPEN_BRACKET;
      this.#chunks.push(chunk);
    }
    if (chunk.length + most + 1 > chunk.bytes.length) {
      const grown = new Uint8Array(Math.max(2 * chunk.bytes.length, chunk.length + most + 1));
      grown.set(chunk.bytes.subarray(0, chunk.length));
      chunk.bytes = grown;
    }
    return chunk;
  }

  /** Gives up the oldest chunk (when writing falls behind); returns how many messages it held. */
  dropOldest(): number {
    const dropped = this.#chunks.shift()?.ids.length ?? 0;
    this.#count -= dropped;
    return dropped;
  }

  /** The chunks, each closed into a complete JSON array; this object is left empty. */
  take(): JsonChunk[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#count = 0;
    for (const chunk of chunks) {
      chunk.bytes[chunk.length++] = CLOSE_BRACKET; // room for it was kept by `add`
      chunk.bytes = chunk.bytes.subarray(0, chunk.length);
    }
    return chunks;
  }

  /** The last `limit` messages, parsed (for a socket entering the room before they are written). */
  last<T>(limit: number): T[] {
    const messages: T[] = [];
    for (let i = this.#chunks.length - 1; i >= 0 && messages.length < limit; i--) {
      const chunk = this.#chunks[i];
      const text = decoder.decode(chunk.bytes.subarray(0, chunk.length));
      messages.unshift(...(JSON.parse(`${text}]`) as T[]));
    }
    return messages.slice(-limit);
  }
}

/** Parses a closed chunk's bytes (as read back from the store). */
export function parseJsonChunk<T>(bytes: Uint8Array): T[] {
  return JSON.parse(decoder.decode(bytes)) as T[];
}
