/**
 * A WebSocket client for tests: every frame is queued, so a test awaits the next one instead
 * of racing `onmessage`; every wait has a timeout that fails the test with a clear message.
 */

/** How long a test waits for a frame or a close before it fails. */
export const WAIT_MS = 5000;

/** A test's end of a WebSocket. */
export class TestSocket {
  readonly socket: WebSocket;
  #frames: (string | ArrayBuffer)[] = [];
  #waiters: ((frame: string | ArrayBuffer) => void)[] = [];
  /** Resolves with the close event's code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(event.data);
      else this.#frames.push(event.data);
    };
    this.closed = new Promise((resolve) => {
      socket.addEventListener(
        "close",
        (event) => resolve({ code: event.code, reason: event.reason }),
      );
    });
  }

  /** Opens a socket; rejects if the handshake fails. `headers` is Deno's extension. */
  static open(
    url: string,
    options: { headers?: HeadersInit; protocols?: string[] } = {},
  ): Promise<TestSocket> {
    // @ts-ignore: Deno accepts `headers` (and `protocols`) options on its WebSocket client
    const socket = new WebSocket(url, { headers: options.headers, protocols: options.protocols });
    const test = new TestSocket(socket);
    return new Promise((resolve, reject) => {
      socket.onopen = () => resolve(test);
      socket.onerror = () => reject(new Error(`WebSocket handshake to ${url} failed`));
    });
  }

  /** Sends a frame. */
  send(data: string | Uint8Array): void {
    this.socket.send(data);
  }

  /** Sends a value as JSON. */
  sendJson(value: unknown): void {
    this.socket.send(JSON.stringify(value));
  }

  /** The next frame, or a rejection after `timeoutMs`. */
  next(timeoutMs = WAIT_MS): Promise<string | ArrayBuffer> {
    const queued = this.#frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`No frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (frame: string | ArrayBuffer) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.#waiters.push(waiter);
    });
  }

  /** The next frame parsed as JSON. */
  async nextJson<T = Record<string, unknown>>(timeoutMs = WAIT_MS): Promise<T> {
    const frame = await this.next(timeoutMs);
    if (typeof frame !== "string") throw new Error("Expected a text frame, got a binary one");
    return JSON.parse(frame) as T;
  }

  /** Skips frames until one matches `predicate` (for example, past the history). */
  async nextMatching<T = Record<string, unknown>>(
    predicate: (value: T) => boolean,
    timeoutMs = WAIT_MS,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = await this.nextJson<T>(Math.max(1, deadline - Date.now()));
      if (predicate(value)) return value;
    }
  }

  /** True when no frame arrives within `ms` (for "receives nothing" checks only). */
  async staysQuiet(ms = 300): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** The close event's code and reason, or a failure when the socket is still open after `ms`. */
  closedWithin(ms = WAIT_MS): Promise<{ code: number; reason: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Socket still open after ${ms} ms`)), ms);
    });
    return Promise.race([this.closed, timeout]).finally(() => clearTimeout(timer));
  }

  /** Frames already received and not yet read. */
  get pending(): number {
    return this.#frames.length;
  }

  /** Closes and waits for the close to finish. */
  async close(code = 1000): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close(code);
    await this.closed;
  }
}

/** True when `socket`, open on the echo route (`/ws/echo/`), still answers. */
export async function echoAnswers(socket: TestSocket): Promise<boolean> {
  socket.send("still here?");
  return await socket.next() === "You said: still here?";
}

/** Expects a handshake to be refused and returns the HTTP status it was refused with. */
export async function handshakeStatus(url: string, headers: HeadersInit = {}): Promise<number> {
  const httpUrl = url.replace(/^ws/, "http");
  const response = await fetch(httpUrl, {
    headers: {
      ...Object.fromEntries(new Headers(headers)),
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))),
    },
  });
  await response.body?.cancel();
  return response.status;
}
