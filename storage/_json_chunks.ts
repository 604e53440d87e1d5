/**
 * Messages waiting to be written, as the JSON texts the wire frames already made: `add` only
 * keeps a reference, and the store values (the UTF-8 bytes of JSON arrays, each under a size
 * bound) are built by `take`, once per write round. Encoding there, in one loop, costs far
 * less than on every message's way to the room: measured on the rooms benchmark, encoding in
 * `add` was one of the largest items of the server's own per-message work.
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
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Queued JSON texts, taken as chunks of at most about `chunkBytes` (one long message may pass it). */
export class JsonChunks {
  #texts: string[] = [];
  #ids: string[] = [];
  #chunkBytes: number;

  constructor(chunkBytes: number) {
    this.#chunkBytes = chunkBytes;
  }

  /** How many messages wait. */
  get count(): number {
    return this.#texts.length;
  }

  /** Queues one message's JSON text. */
  add(id: string, json: string): void {
    this.#texts.push(json);
    this.#ids.push(id);
  }

  /**
   * Gives up the oldest messages, about one chunk's worth (when writing falls behind);
   * returns how many.
   */
  dropOldest(): number {
    let bytes = 0;
    let count = 0;
    while (count < this.#texts.length) {
      bytes += utf8Bound(this.#texts[count]);
      if (count > 0 && bytes > this.#chunkBytes) break;
      count++;
    }
    this.#texts.splice(0, count);
    this.#ids.splice(0, count);
    return count;
  }

  /** The queued messages as closed chunks, oldest first; this object is left empty. */
  take(): JsonChunk[] {
    const texts = this.#texts;
    const ids = this.#ids;
    this.#texts = [];
    this.#ids = [];
    if (texts.length === 0) return [];
    const joined = `[${texts.join(",")}]`;
    // The usual round: everything fits one value whatever the characters are.
    if (3 * joined.length <= this.#chunkBytes) return [{ bytes: encoder.encode(joined), ids }];
    return this.#pack(texts, ids);
  }

  /** The last `limit` messages, parsed (for a socket entering the room before they are written). */
  last<T>(limit: number): T[] {
    if (limit <= 0) return [];
    return JSON.parse(`[${this.#texts.slice(-limit).join(",")}]`) as T[];
  }

  // Encodes text after text, closing a chunk before a text could take it past the bound.
  #pack(texts: string[], ids: string[]): JsonChunk[] {
    const chunks: JsonChunk[] = [];
    let buffer = new Uint8Array(this.#chunkBytes + 2);
    let length = 0;
    let first = 0;
    const close = (end: number): void => {
      buffer[length++] = CLOSE_BRACKET;
      chunks.push({ bytes: buffer.slice(0, length), ids: ids.slice(first, end) });
      length = 0;
      first = end;
    };
    for (let i = 0; i < texts.length; i++) {
      const most = utf8Bound(texts[i]);
      if (length > 0 && length + most + 1 > this.#chunkBytes) close(i);
      if (length + most + 2 > buffer.length) {
        const grown = new Uint8Array(length + most + 2);
        grown.set(buffer.subarray(0, length));
        buffer = grown;
      }
      const separator = length === 0 ? OPEN_BRACKET : COMMA;
      buffer[length++] = separator;
      length += encoder.encodeInto(texts[i], buffer.subarray(length)).written;
    }
    close(texts.length);
    return chunks;
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
