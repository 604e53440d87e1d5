/**
 * A clock whose time moves only when a test says so: grace periods and coalescing windows pass
 * without sleeping, and timers fire in due order.
 */
import type { PresenceClock } from "../../layers/presence/contract.ts";

interface Timer {
  at: number;
  callback: () => void;
}

/** A {@linkcode PresenceClock} driven by {@linkcode FakeClock.advance}. */
export class FakeClock implements PresenceClock {
  #now = Date.UTC(2025, 0, 1);
  #nextId = 1;
  #timers = new Map<number, Timer>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.#now + ms;
    while (true) {
      const due = [...this.#timers].filter(([, timer]) => timer.at <= end)
        .sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
      if (due === undefined) break;
      const [id, timer] = due;
      this.#timers.delete(id);
      this.#now = timer.at;
      timer.callback();
    }
    this.#now = end;
  }
}
