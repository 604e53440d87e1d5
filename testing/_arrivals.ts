/**
 * What reached a communicator's client end and not yet read: the frames in order, and a wake-up
 * for whoever waits for the next thing to happen (a frame, or the socket's close); and a frame
 * read as JSON.
 */
export class Arrivals {
  #frames: (string | Uint8Array)[] = [];
  #waiters = new Set<() => void>();

  /** Frames not read yet. */
  get count(): number {
    return this.#frames.length;
  }

  /** Keeps a frame and wakes the waiters. */
  push(data: string | Uint8Array): void {
    this.#frames.push(data);
    this.wake();
  }

  /** The oldest frame not read yet; call only when {@linkcode count} is above 0. */
  take(): string | Uint8Array {
    return this.#frames.shift()!;
  }

  /** Wakes every waiter: something happened (a close, a handshake given up). */
  wake(): void {
    for (const waiter of this.#waiters) waiter();
    this.#waiters.clear();
  }

  /** Resolves true when something happened, false after `ms`. */
  wait(ms: number): Promise<boolean> {
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(woken);
        resolve(false);
      }, ms);
      const woken = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#waiters.add(woken);
    });
  }
}

/** `frame` parsed as one JSON value; throws saying why not (binary, batched, malformed). */
export function jsonOf(frame: string | Uint8Array): unknown {
  if (typeof frame !== "string") throw new Error("Expected a text frame, got a binary one");
  try {
    return JSON.parse(frame);
  } catch (error) {
    // A batching client's frame (`server/_frame_batch.ts`) holds one JSON value per line.
    const batched = frame.includes("\n") ? " (a batched frame: parse it line by line)" : "";
    throw new SyntaxError(`The frame is not one JSON value${batched}: ${frame.slice(0, 200)}`, {
      cause: error,
    });
  }
}
