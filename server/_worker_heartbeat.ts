/**
 * The parent's watch on its Workers (`--workers N`): a Worker whose event loop is blocked (a
 * consumer in an endless loop, say) serves nobody and never fails on its own, so the parent
 * asks each one for a sign of life every second, and one that stays silent is reported.
 */

/** How often the parent asks each Worker for a sign of life. */
const HEARTBEAT_MS = 1000;

/** Reports the Workers that have not been heard from for `hangMs`. */
export class WorkerHeartbeat {
  readonly #hangMs: number;
  readonly #onSilent: (worker: Worker, index: number, silentMs: number) => void;
  readonly #lastHeard = new Map<Worker, number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(hangMs: number, onSilent: (worker: Worker, index: number, silentMs: number) => void) {
    this.#hangMs = hangMs;
    this.#onSilent = onSilent;
  }

  /** Any message from `worker` counts as a sign of life. */
  listen(worker: Worker): void {
    worker.addEventListener("message", () => this.#lastHeard.set(worker, performance.now()));
  }

  /** Starts watching `workers` (once they all listen); `skip` names those given up already. */
  start(workers: readonly Worker[], skip: (worker: Worker) => boolean): void {
    const startedAt = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      for (const [index, worker] of workers.entries()) {
        if (skip(worker)) continue;
        const silentMs = now - Math.max(startedAt, this.#lastHeard.get(worker) ?? 0);
        // One report at a time: it stops the pool.
        if (silentMs > this.#hangMs) return this.#onSilent(worker, index, silentMs);
        worker.postMessage({ type: "ping" });
      }
    }, Math.min(HEARTBEAT_MS, this.#hangMs / 4));
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
