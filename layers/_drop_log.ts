/**
 * What a layer says in the log when a receiver over capacity drops its events: the first drop of
 * a minute by its event type and target, the rest of that minute counted into the next line.
 * Not a line per drop: a busy dice worker's queue, or a room's slow readers, refuse thousands a
 * second, and one client's load would flood the log. Every drop is still counted in the metrics
 * (`channels_layer_dropped_total`).
 */
import { log } from "../telemetry/log.ts";

/** How long after a drop's line the next drops are only counted. */
export const DROP_LOG_WINDOW_MS = 60_000;

/** The drop lines of one layer. */
export class DropLog {
  #windowStart = -Infinity;
  #counted = 0;
  #now: () => number;
  #says: string;

  /** `says` ends each line ("receiver over capacity"); `now` is the clock in ms (tests move it). */
  constructor(says: string, now: () => number = () => performance.now()) {
    this.#says = says;
    this.#now = now;
  }

  /** `dropped` events of type `type` to `target` were refused. */
  dropped(dropped: number, type: string, target: string): void {
    const now = this.#now();
    if (now - this.#windowStart < DROP_LOG_WINDOW_MS) {
      this.#counted += dropped;
      return;
    }
    const since = this.#counted > 0
      ? `; ${this.#counted} more dropped since the last such line`
      : "";
    this.#windowStart = now;
    this.#counted = 0;
    log.warn(
      `Layer dropped ${dropped} "${type}" event(s) to ${target}: ${this.#says}${since} ` +
        "(further drops for a minute are counted, not logged)",
    );
  }
}
