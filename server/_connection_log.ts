/**
 * The lines a connection (`_connection.ts`) writes to the log when its consumer fails, when
 * frames are dropped before its socket opens, and when its socket closes.
 */
import type { Scope } from "./consumer.ts";
import { describeCloseCode } from "./close_codes.ts";
import { log } from "../telemetry/log.ts";

/** Logs a hook's failure, on which the socket closes with 1011. */
export function logConsumerFailure(scope: Scope, error: unknown): void {
  log.error(`Consumer failed on ${scope.path} [${scope.client}]; closing with 1011`, error);
}

/** Warns of frames sent before the socket opened that its queue (`bytes` long) could not hold. */
export function warnDroppedBeforeOpen(scope: Scope, dropped: number, bytes: number): void {
  log.warn(
    `Dropped ${dropped} frame(s) sent to ${scope.path} [${scope.client}] before ` +
      `the socket opened: more than its queue holds (${bytes} bytes, 4 x MAX_BUFFERED_BYTES)`,
  );
}

// How a page or client leaves as a matter of course: its line needs no reason.
const ORDINARY_CLOSES = new Set([1000, 1001, 1005]);

/**
 * Logs a closed socket: the `DISCONNECT` access line, and at debug level the code it closed
 * with. `byServer` is the close the server sent, `undefined` when the client closed; `reason`
 * the close's own (the client's, or Deno's when it gave up on the connection).
 */
export function logDisconnect(
  scope: Scope,
  code: number,
  byServer: { code: number; reason: string } | undefined,
  reason = "",
): void {
  // Daphne's line; when the server ended it (a refused frame, a slow reader, a shutdown), why,
  // and when the client's end did not close as a page leaving does, how it ended. Reasons are
  // quoted: a client's is its own text, and an app's may hold anything.
  const quoted = (text: string) => text === "" ? "" : `: ${JSON.stringify(text)}`;
  const said = quoted(reason);
  const why = byServer !== undefined
    ? `closed by the server: ${describeCloseCode(byServer.code)}${quoted(byServer.reason)}`
    : ORDINARY_CLOSES.has(code) && said === ""
    ? undefined
    : `closed: ${describeCloseCode(code)}${said}`;
  log.websocket("DISCONNECT", scope.path, scope.client, why);
  log.debug(`WebSocket ${scope.path} closed with ${describeCloseCode(code)}`);
}

/** Warns that a hook still ran `ms` after its socket closed: `disconnect` runs without waiting. */
export function warnHookStillRunning(scope: Scope, ms: number): void {
  log.warn(
    `A hook of ${scope.path} [${scope.client}] still runs ${ms} ms after its socket closed: ` +
      "its groups are left and disconnect runs now; what waited behind it is dropped",
  );
}
