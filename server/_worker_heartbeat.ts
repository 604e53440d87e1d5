/**
 * The parent's watch on its Workers (`--workers N`): a Worker whose event loop is blocked (a
 * consumer in an endless loop, say) serves nobody and never fails on its own, so the parent
 * asks each one for a sign of life every second, and one that stays silent is reported.
 */

/** How often the parent asks each Worker for a sign of life. */
const HEARTBEAT_MS = 1000;

/** Reports the Workers that have left the parent's asks unanswered for `hangMs`. */
export class WorkerHeartbeat {
  readonly #hangMs: number;
  readonly #onSilent: (worker: Worker, index: number, silentMs: number) => void;
  // Whether each Worker said anything since the last ask, and how many asks in a row it left
  // unanswered. Asks, not time: a parent that was itself stopped or busy (a `docker pause`, a
  // long task of its own) asked less often meanwhile, and that is no Worker's silence.
  readonly #answered = new Map<Worker, boolean>();
  readonly #missed = new Map<Worker, number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(hangMs: number, onSilent: (worker: Worker, index: number, silentMs: number) => void) {
    this.#hangMs = hangMs;
    this.#onSilent = onSilent;
  }

  /** Any message from `worker` counts as a sign of life. */
  listen(worker: Worker): void {
    worker.addEventListener("message", () => this.#answered.set(worker, true));
  }

  /** Starts watching `workers` (once they all listen); `skip` names those given up already. */
  start(workers: readonly Worker[], skip: (worker: Worker) => boolean): void {
    const everyMs = Math.min(HEARTBEAT_MS, this.#hangMs / 4);
    const most = Math.ceil(this.#hangMs / everyMs);
    for (const worker of workers) this.#answered.set(worker, true);
    this.#timer = setInterval(() => {
      for (const [index, worker] of workers.entries()) {
        if (skip(worker)) continue;
        const missed = this.#answered.get(worker) ? 0 : (this.#missed.get(worker) ?? 0) + 1;
        this.#missed.set(worker, missed);
        // One report at a time: it stops the pool.
        if (missed >= most) return this.#onSilent(worker, index, missed * everyMs);
        this.#answered.set(worker, false);
        worker.postMessage({ type: "ping" });
      }
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
