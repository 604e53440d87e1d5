/**
 * The few libc socket calls the load generator's paced clients make themselves (Linux, via
 * FFI), so that those sockets are not in Deno's event loop at all: a socket Deno owns wakes
 * that loop for every frame that arrives, read or not, and at 100,000 deliveries/s those
 * wake-ups, not the reads, are most of what the generator costs.
 */

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_SNDTIMEO = 21;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
/** `recv`/`send` flag: do not block. */
export const MSG_DONTWAIT = 0x40;
/** `send` flag: a closed peer is an error (EPIPE), not a SIGPIPE that kills the process. */
export const MSG_NOSIGNAL = 0x4000;
/** Nothing to read, or no room to write, right now. */
export const EAGAIN = 11;
/** Interrupted by a signal: try again. */
export const EINTR = 4;
/** `epoll_event.events`: readable (or closed: a read returns 0 or an error then). */
export const EPOLLIN = 0x1;
const EPOLL_CTL_ADD = 1;
// `struct epoll_event` is packed on x86-64 (12 bytes), naturally aligned elsewhere (16).
const EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The bound calls, and where this thread's `errno` lives. */
export interface Libc {
  calls: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
  errno(): number;
}

let opened: Libc | null | undefined;

/** libc, or null where it cannot be opened (not Linux, or no FFI permission). */
export function libc(): Libc | null {
  if (opened !== undefined) return opened;
  opened = null;
  if (Deno.build.os !== "linux") return opened;
  try {
    const { symbols } = Deno.dlopen("libc.so.6", SYMBOLS);
    const location = symbols.__errno_location();
    if (location === null) return opened;
    const errno = new Deno.UnsafePointerView(location);
    opened = { calls: symbols, errno: () => errno.getInt32() };
  } catch {
    // No FFI permission, or no libc.so.6 (musl): the caller falls back to Deno's sockets.
  }
  return opened;
}

/**
 * A blocking TCP socket connected to `127.0.0.1:port`, with send and receive timeouts of
 * `timeoutMs` (the handshake blocks; later calls pass MSG_DONTWAIT); throws on failure.
 */
export function connectLoopback(c: Libc, port: number, timeoutMs: number): number {
  const fd = c.calls.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw new Error(`socket() failed: errno ${c.errno()}`);
  try {
    const timeout = new BigInt64Array([
      BigInt(Math.floor(timeoutMs / 1000)),
      BigInt((timeoutMs % 1000) * 1000),
    ]);
    const bytes = new Uint8Array(timeout.buffer);
    c.calls.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, bytes, bytes.length);
    c.calls.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, bytes, bytes.length);
    const one = new Uint8Array(new Int32Array([1]).buffer);
    c.calls.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, one.length);
    const address = new Uint8Array(16); // sockaddr_in
    new DataView(address.buffer).setUint16(0, AF_INET, true);
    new DataView(address.buffer).setUint16(2, port, false);
    address.set([127, 0, 0, 1], 4);
    if (c.calls.connect(fd, address, address.length) !== 0) {
      throw new Error(`Connection to 127.0.0.1:${port} failed: errno ${c.errno()}`);
    }
    return fd;
  } catch (error) {
    c.calls.close(fd);
    throw error;
  }
}

/**
 * An epoll set polled without ever blocking: `ready()` lists the sockets with something to
 * read now, so a tick reads those only, and idle sockets cost nothing.
 */
export class ReadySet {
  #c: Libc;
  #epoll: number;
  #events: Uint8Array;
  #view: DataView;
  #event = new Uint8Array(EVENT_SIZE);

  constructor(c: Libc, capacity = 4096) {
    this.#c = c;
    this.#epoll = c.calls.epoll_create1(0);
    if (this.#epoll < 0) throw new Error(`epoll_create1() failed: errno ${c.errno()}`);
    this.#events = new Uint8Array(capacity * EVENT_SIZE);
    this.#view = new DataView(this.#events.buffer);
  }

  /** Watches `fd` for input until it is closed (closing it leaves the set). */
  add(fd: number): void {
    const view = new DataView(this.#event.buffer);
    view.setUint32(0, EPOLLIN, true);
    view.setInt32(EVENT_SIZE - 8, fd, true);
    if (this.#c.calls.epoll_ctl(this.#epoll, EPOLL_CTL_ADD, fd, this.#event) !== 0) {
      throw new Error(`epoll_ctl() failed: errno ${this.#c.errno()}`);
    }
  }

  /** Calls `each` with every watched socket that has input now (up to the capacity). */
  ready(each: (fd: number) => void): void {
    const n = this.#c.calls.epoll_wait(
      this.#epoll,
      this.#events,
      this.#events.length / EVENT_SIZE,
      0,
    );
    for (let i = 0; i < n; i++) each(this.#view.getInt32(i * EVENT_SIZE + EVENT_SIZE - 8, true));
  }
}
