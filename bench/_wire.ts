/**
 * A minimal WebSocket client over a Deno TCP connection, for the load generator.
 *
 * Why not the built-in `WebSocket`: it costs one JS event per frame, so at 100,000
 * deliveries/s the load generator would saturate before the server. Here one `read` hands
 * over every frame that has arrived. And a raw connection can complete the handshake and then
 * never read, which is the only reliable way to make a server buffer (the overload scenario).
 *
 * The generator uses this client where a frame must be read the moment it arrives (the clients
 * that time deliveries) or must not be read at all (stalled clients); the others are
 * `_paced_wire.ts`, which costs far less per delivery.
 */
import {
  afterHandshake,
  concatAll,
  type ControlHandler,
  frame,
  FrameBuffer,
  handshakeRequest,
  now,
  OP_PONG,
  textFrames,
  type TextHandler,
  type Wire,
} from "./_frames.ts";

/**
 * One shared clock for paced readers: `next()` resolves at the next tick, at most `ms` away.
 * The first waiter starts the timer and every reader waiting meanwhile shares it.
 */
export class ReadPacer {
  #ms: number;
  #tick: Promise<void> | null = null;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Resolves at the next tick. */
  next(): Promise<void> {
    return this.#tick ??= new Promise((resolve) => {
      setTimeout(() => {
        this.#tick = null;
        resolve();
      }, this.#ms);
    });
  }
}

/** One client connection on a Deno socket. */
export class WireClient implements Wire {
  #conn: Deno.TcpConn;
  #received: FrameBuffer;
  #pacer: ReadPacer | null;
  #writing: Uint8Array[] = [];
  #backlog = 0;
  #flushing = false;
  #closed = false;
  closedByServer = false;
  closeCode = 0;
  #control: ControlHandler = {
    ping: (payload) => this.#write(frame(OP_PONG, payload), 0),
    closed: (code) => {
      this.closedByServer = true;
      this.closeCode = code;
    },
  };

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array, pacer: ReadPacer | null) {
    this.#conn = conn;
    this.#received = new FrameBuffer(leftover);
    this.#pacer = pacer;
  }

  /**
   * Connects to `127.0.0.1:port` and completes the handshake for `path`; throws on refusal.
   * With a `pacer` it reads at most once per tick, taking what arrived meanwhile in one go
   * (frames then arrive late by up to a tick, so their read time says nothing of latency).
   */
  static async connect(
    port: number,
    path: string,
    options: { timeoutMs?: number; pacer?: ReadPacer } = {},
  ): Promise<WireClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const timer = setTimeout(() => conn.close(), options.timeoutMs ?? 10_000);
    try {
      conn.setNoDelay(true);
      await writeAll(conn, handshakeRequest(port, path));
      const leftover = await readHandshake(conn);
      clearTimeout(timer);
      return new WireClient(conn, leftover, options.pacer ?? null);
    } catch (error) {
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* already closed by the timer */ }
      throw error;
    }
  }

  sendText(texts: string[]): void {
    this.#write(textFrames(texts), texts.length);
  }

  get backlog(): number {
    return this.#backlog;
  }

  startReading(onText: TextHandler): void {
    void this.#readLoop(onText);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async #readLoop(onText: TextHandler): Promise<void> {
    let readAt = now();
    try {
      while (!this.#closed) {
        this.#received.walk(onText, this.#control, readAt);
        const space = this.#received.space();
        if (this.#pacer !== null) await this.#pacer.next();
        const n = await this.#conn.read(space);
        if (n === null) break;
        this.#received.filled(n);
        readAt = now();
      }
    } catch {
      // A reset or our own close: the connection is over either way.
    }
    if (!this.#closed) this.closedByServer = true;
  }

  #write(bytes: Uint8Array, frames: number): void {
    if (this.#closed) return;
    this.#writing.push(bytes);
    this.#backlog += frames;
    if (!this.#flushing) void this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#writing.length > 0 && !this.#closed) {
        const parts = this.#writing;
        this.#writing = [];
        const frames = this.#backlog;
        await writeAll(this.#conn, concatAll(parts));
        this.#backlog -= frames;
      }
    } catch {
      this.closedByServer = !this.#closed;
      this.#writing = [];
      this.#backlog = 0;
    } finally {
      this.#flushing = false;
    }
  }
}

async function readHandshake(conn: Deno.TcpConn): Promise<Uint8Array> {
  let received: Uint8Array = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("Connection closed during the WebSocket handshake");
    received = concatAll([received, chunk.slice(0, n)]);
    const leftover = afterHandshake(received);
    if (leftover !== null) return leftover;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
