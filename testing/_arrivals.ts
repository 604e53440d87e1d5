/**
 * What reached a communicator's client end and not yet read: the frames in order, and a wake-up
 * for whoever waits for the next thing to happen (a frame, or the socket's close).
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
