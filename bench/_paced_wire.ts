/**
 * The load generator's cheap client: a WebSocket client on a libc socket (`_libc.ts`) that
 * Deno's event loop never sees. One timer reads every such client in turn once per tick, with
 * non-blocking `recv` calls, taking every frame that arrived since the last tick in one go.
 *
 * Why: a socket in Deno's event loop wakes it for every frame that arrives, read or not; at
 * the rates where one server process saturates (~150,000 deliveries/s) that cost the
 * generator most of a core, leaving no core for a second server process on a 2-core machine.
 * The price: a paced client sees a frame up to a tick late, so it counts and checks frames but
 * does not time them (the timed clients are `_wire.ts`).
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
import {
  connectLoopback,
  EAGAIN,
  EINTR,
  type Libc,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  ReadySet,
} from "./_libc.ts";

// 10 ms: ~8 frames per read at 150,000 deliveries/s over 200 clients, and far less than the
// kernel's socket buffers hold.
const TICK_MS = 10;
// Reads per client per tick: a client that fills its buffer is read again at once, but a
// tick must end even if one client gets more than the generator can take.
const READS_PER_TICK = 8;

// Every paced client that reads, by socket; those with bytes still to write.
const reading = new Map<number, PacedWire>();
const writing = new Set<PacedWire>();
let ready: ReadySet | null = null;
let ticker: ReturnType<typeof setInterval> | null = null;

function tick(): void {
  const readAt = now();
  for (const client of writing) client.flush();
  ready?.ready((fd) => reading.get(fd)?.pump(readAt));
  if (reading.size === 0 && writing.size === 0 && ticker !== null) {
    clearInterval(ticker);
    ticker = null;
  }
}

function startTicking(): void {
  ticker ??= setInterval(tick, TICK_MS);
}

/** One client connection on a libc socket, read once per tick. */
export class PacedWire implements Wire {
  #c: Libc;
  #fd: number;
  #received: FrameBuffer;
  #onText: TextHandler | null = null;
  #unsent: Uint8Array[] = [];
  #backlog = 0;
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

  private constructor(c: Libc, fd: number, leftover: Uint8Array) {
    this.#c = c;
    this.#fd = fd;
    this.#received = new FrameBuffer(leftover);
  }

  /**
   * Connects to `127.0.0.1:port` and completes the handshake for `path`; throws on refusal.
   * The handshake blocks the generator for its round trip (on loopback, a millisecond or so):
   * simpler than a non-blocking connect, and nothing is being measured while clients connect.
   */
  static connect(c: Libc, port: number, path: string, timeoutMs = 10_000): PacedWire {
    const fd = connectLoopback(c, port, timeoutMs);
    try {
      const request = handshakeRequest(port, path);
      if (c.calls.send(fd, request, BigInt(request.length), MSG_NOSIGNAL) !== request.length) {
        throw new Error(`Handshake not sent: errno ${c.errno()}`);
      }
      let received: Uint8Array = new Uint8Array(0);
      const chunk = new Uint8Array(4096);
      for (;;) {
        const n = c.calls.recv(fd, chunk, BigInt(chunk.length), 0);
        if (n === 0) throw new Error("Connection closed during the WebSocket handshake");
        if (n < 0) {
          if (c.errno() === EINTR) continue;
          throw new Error(`No handshake answer: errno ${c.errno()}`);
        }
        received = concatAll([received, chunk.slice(0, n)]);
        const leftover = afterHandshake(received);
        if (leftover !== null) return new PacedWire(c, fd, leftover);
      }
    } catch (error) {
      c.calls.close(fd);
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
    if (this.#closed || this.#onText !== null) return;
    this.#onText = onText;
    ready ??= new ReadySet(this.#c);
    ready.add(this.#fd);
    reading.set(this.#fd, this);
    startTicking();
    // Frames that came with the handshake answer are already here.
    this.#received.walk(onText, this.#control, now());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    reading.delete(this.#fd);
    writing.delete(this);
    this.#unsent = [];
    this.#c.calls.close(this.#fd);
  }

  /** Reads what arrived since the last tick; called by the tick when there is something. */
  pump(readAt: number): void {
    for (let i = 0; i < READS_PER_TICK && !this.#closed; i++) {
      const space = this.#received.space();
      const n = this.#c.calls.recv(this.#fd, space, BigInt(space.length), MSG_DONTWAIT);
      if (n > 0) {
        this.#received.filled(n);
        this.#received.walk(this.#onText!, this.#control, readAt);
        if (n < space.length) return; // drained: the next bytes are for the next tick
      } else if (n === 0) return this.#lost();
      else {
        const errno = this.#c.errno();
        if (errno === EAGAIN) return;
        if (errno !== EINTR) return this.#lost();
      }
    }
  }

  // The server ended the connection (or it broke): nothing more will come.
  #lost(): void {
    this.closedByServer = true;
    this.close();
  }

  #write(bytes: Uint8Array, frames: number): void {
    if (this.#closed) return;
    this.#unsent.push(bytes);
    this.#backlog += frames;
    this.flush();
  }

  /** Writes as much as the socket takes now; the rest waits for the next tick. */
  flush(): void {
    while (this.#unsent.length > 0 && !this.#closed) {
      const bytes = concatAll(this.#unsent);
      const n = this.#c.calls.send(
        this.#fd,
        bytes,
        BigInt(bytes.length),
        MSG_DONTWAIT | MSG_NOSIGNAL,
      );
      if (n < 0) {
        const errno = this.#c.errno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) {
          this.#unsent = [bytes];
          writing.add(this);
          startTicking();
        } else this.#lost();
        return;
      }
      if (n === bytes.length) {
        this.#unsent = [];
        this.#backlog = 0;
        writing.delete(this);
      } else this.#unsent = [bytes.subarray(n)];
    }
  }
}
