/**
 * Drain on deploy: a server that is told to stop (SIGTERM) closes its sockets a few at a time,
 * evenly over a window, instead of all in one millisecond, so its clients reconnect to the other
 * processes without a stampede (and without all hitting one process's handshake at once).
 *
 * This module only decides when each socket closes; closing it and what follows (the
 * consumer's `disconnect`, presence kept for its grace period) are the caller's.
 *
 * @example
 * ```ts
 * import { closeSpread } from "@channels/deno";
 *
 * declare const sockets: WebSocket[];
 * // Ten sockets over one second: one every 100 ms, the first at once.
 * await closeSpread(sockets, (socket) => socket.close(1012, "Service restart"), {
 *   windowMs: 1000,
 * });
 * ```
 */

/** The timer seam of a drain: tests pass a fake clock so a window passes without sleeping. */
export interface DrainClock {
  /** The time in milliseconds. */
  now(): number;
  /** Schedules `callback`; the handle is opaque to the caller. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a callback `setTimeout` scheduled. */
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const SYSTEM_DRAIN_CLOCK: DrainClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** How a drain spreads its closes. */
export interface SpreadOptions {
  /** The window, in ms: the closes are spread evenly over it; 0 closes everything at once. */
  windowMs: number;
  /**
   * The shortest wait between two rounds of closes, in ms (default 10): with thousands of
   * sockets, several close in one round rather than one timer each.
   */
  stepMs?: number;
  /** The timers (default: the real ones). */
  clock?: DrainClock;
}

/**
 * When each of `count` sockets closes, in ms after the drain starts: socket `i` at
 * `i * windowMs / count`, so the first closes at once and the last one slot before the end.
 */
export function drainSchedule(count: number, windowMs: number): number[] {
  return Array.from({ length: count }, (_, i) => (i * windowMs) / count);
}

/**
 * Calls `close` on each of `items`, in order, spread evenly over `options.windowMs` (see
 * {@linkcode drainSchedule}); resolves once the last one was closed. A `close` that throws is
 * the caller's bug: the drain goes on with the next item and rethrows at the end.
 */
export function closeSpread<T>(
  items: readonly T[],
  close: (item: T) => void,
  options: SpreadOptions,
): Promise<void> {
  const clock = options.clock ?? SYSTEM_DRAIN_CLOCK;
  const stepMs = Math.max(1, options.stepMs ?? 10);
  const due = drainSchedule(items.length, Math.max(0, options.windowMs));
  const started = clock.now();
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  let next = 0;
  let failure: unknown = null;
  const round = (): void => {
    const elapsed = clock.now() - started;
    while (next < items.length && due[next] <= elapsed) {
      try {
        close(items[next]);
      } catch (error) {
        failure ??= error;
      }
      next++;
    }
    if (next < items.length) {
      clock.setTimeout(round, Math.max(stepMs, due[next] - elapsed));
    } else if (failure !== null) {
      reject(failure);
    } else {
      resolve();
    }
  };
  round();
  return promise;
}

/** Resolves with `true` once `promise` settles, or with `false` after `ms` (it is not cancelled). */
export function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
  clock: DrainClock = SYSTEM_DRAIN_CLOCK,
): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => resolve(false), ms);
    promise.then(() => true, () => true).then((settled) => {
      clock.clearTimeout(timer);
      resolve(settled);
    });
  });
}
