/**
 * The WebSocket client protocol both kinds of bench client speak (`_wire.ts` over Deno's
 * sockets, `_paced_wire.ts` over libc's): the handshake, client frames, and a receive buffer
 * that walks frame headers and hands each text payload over in place.
 */

/** Text frame opcode. */
export const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
/** Pong frame opcode. */
export const OP_PONG = 0xa;
const READ_BUFFER = 64 * 1024;
// Free space below which the buffer is compacted (or grown, for a frame larger than it).
const MIN_READ = 8 * 1024;
/** Longest handshake answer accepted. */
export const HANDSHAKE_LIMIT = 8 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Called with each complete text frame: its payload is `bytes[start, end)` (UTF-8, valid only
 * during the call), `readAt` the time its read returned. Bytes, not a string: decoding every
 * frame would make the load generator, not the server, the limit of the saturation scenario.
 */
export type TextHandler = (bytes: Uint8Array, start: number, end: number, readAt: number) => void;

/** A bench client connection, whichever sockets it runs on. */
export interface Wire {
  /** Set once the server closed the connection or sent a close frame. */
  readonly closedByServer: boolean;
  /** The server's close code, when it sent one. */
  readonly closeCode: number;
  /** Frames waiting to be written (the server is not reading fast enough). */
  readonly backlog: number;
  /** Queues text frames and writes them as soon as the socket takes them. */
  sendText(texts: string[]): void;
  /** Reads until the connection ends, calling `onText` for every text frame. */
  startReading(onText: TextHandler): void;
  /** Closes the TCP connection without a close handshake (cheap, and fine for a bench). */
  close(): void;
}

/** What a frame buffer reports besides text: a ping to answer, the server's close. */
export interface ControlHandler {
  ping(payload: Uint8Array): void;
  closed(code: number): void;
}

/** One connection's received bytes: read into {@linkcode space}, then {@linkcode walk}. */
export class FrameBuffer {
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;

  /** Starts with the bytes that came after the handshake answer. */
  constructor(leftover: Uint8Array) {
    this.#buffer = new Uint8Array(Math.max(READ_BUFFER, leftover.length * 2));
    this.#buffer.set(leftover);
    this.#end = leftover.length;
  }

  /** Where the next read goes: at least MIN_READ bytes, after moving a partial frame. */
  space(): Uint8Array {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#buffer.length - this.#end < MIN_READ) {
      const tail = this.#buffer.subarray(this.#start, this.#end);
      if (this.#buffer.length - tail.length < MIN_READ) {
        const larger = new Uint8Array(this.#buffer.length * 2);
        larger.set(tail);
        this.#buffer = larger;
      } else this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    return this.#buffer.subarray(this.#end);
  }

  /** Records `n` bytes read into the last {@linkcode space}. */
  filled(n: number): void {
    this.#end += n;
  }

  /** Hands over every complete frame; a partial one waits for the next read. */
  walk(onText: TextHandler, control: ControlHandler, readAt: number): void {
    const buffer = this.#buffer, end = this.#end;
    let offset = this.#start;
    while (end - offset >= 2) {
      const opcode = buffer[offset] & 0x0f;
      let length = buffer[offset + 1] & 0x7f;
      let header = 2;
      if (length === 126) {
        if (end - offset < 4) break;
        length = (buffer[offset + 2] << 8) | buffer[offset + 3];
        header = 4;
      } else if (length === 127) {
        if (end - offset < 10) break;
        length = Number(
          new DataView(buffer.buffer, buffer.byteOffset + offset + 2, 8).getBigUint64(0),
        );
        header = 10;
      }
      if (end - offset < header + length) break;
      const payload = offset + header;
      offset = payload + length;
      if (opcode === OP_TEXT) onText(buffer, payload, offset, readAt);
      else if (opcode === OP_PING) control.ping(buffer.slice(payload, offset));
      else if (opcode === OP_CLOSE) {
        control.closed(length >= 2 ? (buffer[payload] << 8) | buffer[payload + 1] : 1005);
      }
    }
    this.#start = offset;
  }
}

/**
 * The upgrade request for `path` on `127.0.0.1:port`, with the `Origin` a page of that host
 * sends: Channels' `AllowedHostsOriginValidator` (Daphne) refuses a handshake without one.
 */
export function handshakeRequest(port: number, path: string): Uint8Array {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  return encoder.encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/**
 * The bytes after a complete `101` answer in `received` (frames sent right after it), or
 * null while the answer is incomplete; throws when the server refused.
 */
export function afterHandshake(received: Uint8Array): Uint8Array | null {
  let end = -1;
  for (let i = 3; i < received.length && end < 0; i++) {
    if (
      received[i] === 10 && received[i - 1] === 13 && received[i - 2] === 10 &&
      received[i - 3] === 13
    ) end = i - 3;
  }
  if (end < 0) {
    if (received.length >= HANDSHAKE_LIMIT) throw new Error("Handshake answer too long");
    return null;
  }
  const head = decoder.decode(received.subarray(0, end));
  const status = head.slice(0, head.indexOf("\r\n"));
  if (!/^HTTP\/1\.1 101\b/.test(status)) throw new Error(`Handshake refused: ${status}`);
  return received.slice(end + 4);
}

/** A client frame with `payload`; masked, as a client's must be, with an all-zero key. */
export function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = new Uint8Array(header + 4 + length);
  out[0] = 0x80 | opcode;
  if (header === 2) out[1] = 0x80 | length;
  else if (header === 4) {
    out[1] = 0x80 | 126;
    out[2] = length >> 8;
    out[3] = length & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(length));
  }
  out.set(payload, header + 4);
  return out;
}

/** Text frames for `texts`, in one buffer. */
export function textFrames(texts: string[]): Uint8Array {
  return concatAll(texts.map((text) => frame(OP_TEXT, encoder.encode(text))));
}

/** `parts` joined. */
export function concatAll(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Wall-clock milliseconds with sub-millisecond precision, shared by sender and receivers. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
