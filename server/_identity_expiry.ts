/**
 * A socket lives no longer than the session or token it was opened with: at the moment either
 * ends, it closes with 4001, as a log-out closes it. Without this, a socket opened a minute
 * before its session expired went on acting as the user for as long as it stayed open, while
 * every page already showed the visitor as anonymous. Only a signed-in socket has a timer.
 */
import type { WebSocketConnection } from "./_connection.ts";
import { CloseCode } from "./close_codes.ts";

// Deno's timers keep one list per distinct length, and a cleared timer's list stays in memory
// until that length has passed. Waiting each socket's own time left (different to the
// millisecond, up to the 14 days of a session) kept a list per socket for days after it closed.
// So the waits come in few lengths, none long: hour steps, then whole seconds, then the last
// part of a second, which keeps the close at the expiry itself.
const STEP_MS = 60 * 60 * 1000;
const SECOND_MS = 1000;

/** How long to wait before looking again, with `leftMs` (more than 0) to the expiry. */
function expiryWait(leftMs: number): number {
  if (leftMs > STEP_MS) return STEP_MS;
  if (leftMs >= SECOND_MS) return Math.floor(leftMs / SECOND_MS) * SECOND_MS;
  return leftMs;
}

/** The timer seam: tests pass a fake clock so days pass without sleeping. */
export interface ExpiryClock {
  /** The time in milliseconds since the epoch. */
  now(): number;
  /** Schedules `callback` without keeping the process up; the handle is opaque. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a callback `setTimeout` scheduled. */
  clearTimeout(handle: unknown): void;
}

/** The real clock. Not a reason to keep the process up: a stop closes the socket anyway. */
const SYSTEM_CLOCK: ExpiryClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    Deno.unrefTimer(timer);
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/**
 * Closes `conn` with 4001 and `reason` at `expiresAt` (ms since the epoch), unless it has
 * finished by then.
 */
export function closeAtExpiry(
  conn: Pick<WebSocketConnection, "close" | "onFinished">,
  expiresAt: number,
  reason: string,
  options: { clock?: ExpiryClock } = {},
): void {
  const clock = options.clock ?? SYSTEM_CLOCK;
  let timer: unknown;
  const check = (): void => {
    const left = expiresAt - clock.now();
    if (left <= 0) return conn.close(CloseCode.LOGGED_OUT, reason);
    timer = clock.setTimeout(check, expiryWait(left));
  };
  check();
  conn.onFinished(() => clock.clearTimeout(timer));
}
