/**
 * A WebSocket client on a bare TCP connection, for what a browser-like client cannot do: stop
 * reading, so that the server's writes to it pile up (the slow-reader tests). It also writes
 * each frame in one piece: Deno's own client splits large frames and waits ~40 ms on Nagle's
 * algorithm each time, far too slow for tests that chat at volume.
 *
 * @example
 * ```ts
 * const slow = await RawWebSocket.open(server.wsUrl("/ws/chat/lobby/"));
 * // ... the room chats; `slow` reads nothing ...
 * const { texts, closeCode } = await slow.readUntilClose();
 * ```
 */

const decoder = new TextDecoder();
const OPCODE_TEXT = 1;
const OPCODE_CLOSE = 8;

/** A raw client's end of a WebSocket: it reads only when told to. */
export class RawWebSocket {
  /** The handshake's response headers (e.g. `x-served-by` with `--workers N`). */
  headers = new Headers();
  #conn: Deno.TcpConn;
  #buffer: Uint8Array;

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#buffer = leftover;
  }

  /** Connects and completes the handshake; rejects unless the server answers 101. */
  static async open(
    url: string,
    options: { headers?: Record<string, string> } = {},
  ): Promise<RawWebSocket> {
    const { hostname, port, pathname, search, host } = new URL(url);
    const conn = await Deno.connect({ hostname, port: Number(port) });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const request = `GET ${pathname}${search} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`)
        .join("") +
      "\r\n";
    await conn.write(new TextEncoder().encode(request));
    const raw = new RawWebSocket(conn, new Uint8Array(0));
    const head = await raw.#readHead();
    if (!head.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`Handshake refused: ${head.split("\r\n")[0]}`);
    }
    for (const line of head.split("\r\n").slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) raw.headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return raw;
  }

  /**
   * Sends one frame whose first byte (FIN, the reserved bits, the opcode) is `head` as given:
   * a frame no client should send, to see what the server makes of it.
   */
  async sendFrame(head: number, payload: Uint8Array): Promise<void> {
    const frame = maskedFrame(0, payload);
    frame[0] = head;
    await this.#write(frame);
  }

  /** Sends a text frame (masked, as clients must), in one write. */
  async send(text: string): Promise<void> {
    await this.#write(maskedFrame(OPCODE_TEXT, new TextEncoder().encode(text)));
  }

  /**
   * Sends text frames back to back in one write, as a page's queued sends go out: the client
   * has sent them all before the server reads the first.
   */
  async sendBurst(texts: string[]): Promise<void> {
    const frames = texts.map((text) => maskedFrame(OPCODE_TEXT, new TextEncoder().encode(text)));
    const bytes = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
    let at = 0;
    for (const frame of frames) {
      bytes.set(frame, at);
      at += frame.length;
    }
    await this.#write(bytes);
  }

  /**
   * Sends a text frame and a close frame (`code`, `reason`) in one write: the close arrives
   * before the server could answer the text.
   */
  async sendThenClose(text: string, code: number, reason: string): Promise<void> {
    const data = maskedFrame(OPCODE_TEXT, new TextEncoder().encode(text));
    const said = new TextEncoder().encode(reason);
    const closePayload = new Uint8Array(2 + said.length);
    closePayload.set([code >> 8, code & 0xff]);
    closePayload.set(said, 2);
    const close = maskedFrame(OPCODE_CLOSE, closePayload);
    const both = new Uint8Array(data.length + close.length);
    both.set(data);
    both.set(close, data.length);
    await this.#write(both);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let written = 0; written < bytes.length;) {
      written += await this.#conn.write(bytes.subarray(written));
    }
  }

  /** The next text frame; rejects when the connection closes first. */
  async nextText(): Promise<string> {
    while (true) {
      const frame = await this.#readFrame();
      if (frame === null || frame.opcode === OPCODE_CLOSE) {
        throw new Error("The server closed the connection");
      }
      if (frame.opcode === OPCODE_TEXT) return decoder.decode(frame.payload);
    }
  }

  /**
   * Reads every frame until the server's close frame; text frames are returned in order, with
   * the close's code and reason (null when the connection ended without one).
   */
  async readUntilClose(): Promise<
    { texts: string[]; closeCode: number | null; closeReason: string | null }
  > {
    const texts: string[] = [];
    while (true) {
      const frame = await this.#readFrame();
      if (frame === null) return { texts, closeCode: null, closeReason: null };
      if (frame.opcode === OPCODE_TEXT) texts.push(decoder.decode(frame.payload));
      if (frame.opcode === OPCODE_CLOSE) {
        const code = frame.payload.length >= 2 ? (frame.payload[0] << 8) | frame.payload[1] : 1005;
        return { texts, closeCode: code, closeReason: decoder.decode(frame.payload.subarray(2)) };
      }
    }
  }

  /** Drops the TCP connection without a close handshake. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #readHead(): Promise<string> {
    while (true) {
      const text = decoder.decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buffer = this.#buffer.slice(new TextEncoder().encode(text.slice(0, end + 4)).length);
        return text.slice(0, end);
      }
      if (!await this.#fill()) throw new Error("Connection closed during the handshake");
    }
  }

  async #readFrame(): Promise<{ opcode: number; payload: Uint8Array } | null> {
    if (!await this.#need(2)) return null;
    const opcode = this.#buffer[0] & 0x0f;
    let length = this.#buffer[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (!await this.#need(4)) return null;
      length = (this.#buffer[2] << 8) | this.#buffer[3];
      offset = 4;
    } else if (length === 127) {
      if (!await this.#need(10)) return null;
      length = Number(new DataView(this.#buffer.buffer, this.#buffer.byteOffset).getBigUint64(2));
      offset = 10;
    }
    if (!await this.#need(offset + length)) return null;
    const payload = this.#buffer.slice(offset, offset + length);
    this.#buffer = this.#buffer.slice(offset + length);
    return { opcode, payload };
  }

  async #need(bytes: number): Promise<boolean> {
    while (this.#buffer.length < bytes) {
      if (!await this.#fill()) return false;
    }
    return true;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const read = await this.#conn.read(chunk);
    if (read === null) return false;
    const joined = new Uint8Array(this.#buffer.length + read);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, read), this.#buffer.length);
    this.#buffer = joined;
    return true;
  }
}

// One final frame with `opcode` and `payload`, masked as a client's must be.
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = new Uint8Array(header + 4 + length);
  frame[0] = 0x80 | opcode;
  if (header === 2) frame[1] = 0x80 | length;
  else if (header === 4) frame.set([0x80 | 126, length >> 8, length & 0xff], 1);
  else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  frame.set(mask, header);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i] ^ mask[i % 4];
  return frame;
}
