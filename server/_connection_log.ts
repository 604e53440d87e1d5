/**
 * The lines a connection (`_connection.ts`) writes to the log when its consumer fails, when
 * frames are dropped before its socket opens, when an event has no handler, and when its socket
 * closes; and the one a stream follower (`_follower.ts`) writes for an event it cannot place.
 */
import { shownClient } from "./_shown_client.ts";
import type { Scope } from "./consumer.ts";
import type { LayerEvent } from "../layers/layer.ts";
import { describeClientCloseCode, describeCloseCode } from "./close_codes.ts";
import { log, quoteClipped } from "../telemetry/log.ts";
import { TRACKER_EVENTS } from "../layers/presence/contract.ts";
import { unhandledEvents } from "./_consumer_failures.ts";
import { handlerMisplaced } from "./_event_names.ts";
import type { SocketLike } from "./_socket.ts";

/** When a consumer failed: its socket open (it closes with 1011), closed, or in `connect`. */
export type FailedWhen = "open" | "closed" | "connecting";

// What follows a failure, by when it came: the line must say what the client is answered.
const AFTER_FAILURE: Record<FailedWhen, string> = {
  open: "; closing with 1011",
  // A call nobody awaited failed after the close: the line must not announce one.
  closed: " after its socket closed",
  // A call `connect` did not await: the handshake is refused (500, or 503 for a backend away).
  connecting: " while its connect ran; refusing the handshake",
};

/** Logs a hook's failure, and what the client gets for it (see {@linkcode FailedWhen}). */
export function logConsumerFailure(scope: Scope, error: unknown, when: FailedWhen = "open"): void {
  const message = `Consumer failed on ${scope.path} [${shownClient(scope.client, scope.peer)}]${
    AFTER_FAILURE[when]
  }`;
  // `throw undefined` is a failure too, and the line must not read as one without a cause.
  log.error(error === undefined ? `${message}: it threw undefined` : message, error);
}

/** Warns of frames sent before the socket opened that its queue (`bytes` long) could not hold. */
export function warnDroppedBeforeOpen(scope: Scope, dropped: number, bytes: number): void {
  log.warn(
    `Dropped ${dropped} frame(s) sent to ${scope.path} [${
      shownClient(scope.client, scope.peer)
    }] before ` +
      `the socket opened: more than its queue holds (${bytes} bytes, 4 x MAX_BUFFERED_BYTES)`,
  );
}

// How a page or client leaves as a matter of course: its line needs no reason.
const ORDINARY_CLOSES = new Set([1000, 1001, 1005]);

/**
 * Logs a closed socket: the `DISCONNECT` access line, and at debug level the code it closed
 * with. `server` is the close the server asked for (`sent` once its frame went), `undefined`
 * when it asked for none; `reason` the close's own (the client's, or Deno's when it gave up on
 * the connection).
 */
export function logDisconnect(
  scope: Scope,
  code: number,
  server: { code: number; reason: string; sent: boolean } | undefined,
  reason = "",
): void {
  // Daphne's line; when the server ended it (a refused frame, a slow reader, a shutdown), why,
  // and when the client's end did not close as a page leaving does, how it ended. Reasons are
  // quoted: a client's is its own text, and an app's may hold anything.
  const quoted = (text: string) => text === "" ? "" : `: ${JSON.stringify(text)}`;
  const said = quoted(reason);
  const asked = server === undefined
    ? ""
    : `${describeCloseCode(server.code)}${quoted(server.reason)}`;
  const why = server?.sent === true ? `closed by the server: ${asked}` : server !== undefined
    // The client's close crossed the server's decision: the client never got the server's.
    ? `closed: ${describeClientCloseCode(code)}${said}, before the server's close (${asked}) went`
    : ORDINARY_CLOSES.has(code) && said === ""
    ? undefined
    : `closed: ${describeClientCloseCode(code)}${said}`;
  log.websocket("DISCONNECT", scope.path, shownClient(scope.client, scope.peer), why);
  log.debug(
    `WebSocket ${scope.path} [${shownClient(scope.client, scope.peer)}] closed with ${
      describeClientCloseCode(code)
    }`,
  );
}

/** Warns that a hook still ran `ms` after its socket closed: `disconnect` runs without waiting. */
export function warnHookStillRunning(scope: Scope, ms: number): void {
  log.warn(
    `A hook of ${scope.path} [${
      shownClient(scope.client, scope.peer)
    }] still runs ${ms} ms after its socket closed: ` +
      "its groups are left and disconnect runs now; what waited behind it is dropped",
  );
}

// Event types warned about as unhandled, by route: one line per route and type, and no more than
// `UNHANDLED_TYPES_NAMED` types per route (an event from outside, a Redis publish, may be typed
// anything).
const unhandledWarned = new WeakMap<object, Set<string>>();
const UNHANDLED_TYPES_NAMED = 32;

/**
 * Notes an event of `type` that reached a socket whose consumer (its `hooks`) has no handler for
 * it: a warning, once per `route` and type, and for a communicator that waits in vain, by
 * `socket`. Channels raises "No handler for message type" here; the framework lets the socket go
 * on, but an event nobody takes (a type mistyped on one side) must not vanish in silence.
 */
export function noteUnhandledEvent(
  type: string,
  { route, scope, socket, hooks }: {
    route: object;
    scope: Scope;
    socket: SocketLike | object;
    hooks: object;
  },
): void {
  // The framework's own, to the presence group its members' sockets share: not theirs to take.
  if (TRACKER_EVENTS.has(type)) return;
  const told = unhandledEvents.has(socket);
  let warned = unhandledWarned.get(route);
  if (warned === undefined) unhandledWarned.set(route, warned = new Set());
  const warn = !warned.has(type) && warned.size < UNHANDLED_TYPES_NAMED;
  if (told && !warn) return;
  const text = `No handler for ${quoteClipped(type)} events${handlerMisplaced(hooks, type)}`;
  if (!told) unhandledEvents.set(socket, text);
  if (!warn) return;
  warned.add(type);
  log.warn(`${text}, on ${scope.path}: ignored`);
}

// Events already said to be dropped; weak, so they are let go with the event.
const warnedNotInStream = new WeakSet<LayerEvent>();

/**
 * Warns, once per event (every socket of the group sees it), that a streamed event of `group`
 * is dropped because its offset is not in the group's stream.
 */
export function warnNotInStream(event: LayerEvent, group: string): void {
  if (warnedNotInStream.has(event)) return;
  warnedNotInStream.add(event);
  log.warn(
    `Dropped a "${event.type}" event to "${group}": its offset ${event.offset} of epoch ` +
      `"${event.epoch}" is not in the group's stream (an event sent from outside must not ` +
      `carry "offset" or "epoch": the stream gives them; or a failover lost it)`,
  );
}
