/**
 * A socket lives no longer than the session or token it was opened with: at the moment either
 * ends, it closes with 4001, as a log-out closes it. Without this, a socket opened a minute
 * before its session expired went on acting as the user for as long as it stayed open, while
 * every page already showed the visitor as anonymous. Only a signed-in socket has a timer.
 */
import type { WebSocketConnection } from "./_connection.ts";
import { CloseCode } from "./close_codes.ts";

// The longest a timer waits (about 24.8 days); a later end is waited for in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Closes `conn` with 4001 and `reason` at `expiresAt` (ms since the epoch), unless it has
 * finished by then.
 */
export function closeAtExpiry(conn: WebSocketConnection, expiresAt: number, reason: string): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = (): void => {
    const left = expiresAt - Date.now();
    if (left <= 0) return conn.close(CloseCode.LOGGED_OUT, reason);
    timer = setTimeout(check, Math.min(left, MAX_TIMER_MS));
    // Not a reason to keep the process up: a stop closes the socket anyway.
    Deno.unrefTimer(timer);
  };
  check();
  conn.onFinished(() => clearTimeout(timer));
}
