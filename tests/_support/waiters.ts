/**
 * Waiting for something to show up in what keeps arriving (a child's output, log lines):
 * each wait looks now and again after every arrival, and fails after its timeout with a
 * message that shows what did arrive.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const waiters = new Waiters();
 * log.setSink((line) => {
 *   lines.push(line);
 *   waiters.notify();
 * });
 * await waiters.waitFor(() => lines.find((l) => l.includes("CONNECT")), 5000, () => "No CONNECT");
 * ```
 */

/** The pending waits on one growing source. */
export class Waiters {
  #checks = new Set<() => void>();

  /** Lets every pending wait look again; call it after each arrival. */
  notify(): void {
    for (const check of this.#checks) check();
  }

  /**
   * Resolves with the first answer of `find` that is not `undefined`; rejects with
   * `failure()` as the message once `timeoutMs` passed without one.
   */
  waitFor<T>(
    find: () => T | undefined,
    timeoutMs: number,
    failure: () => string,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found === undefined) return;
        cleanup();
        resolve(found);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(failure()));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#checks.delete(check);
      };
      this.#checks.add(check);
      check();
    });
  }
}
