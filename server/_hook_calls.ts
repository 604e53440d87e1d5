/**
 * Calling a consumer's hooks: which hook a frame or a layer event goes to, and what the
 * `connect` and `disconnect` hooks' outcomes mean for the connection (`_connection.ts`).
 */
import type { Connection, Consumer, ConsumerHooks } from "./consumer.ts";
import type { LayerEvent } from "../layers/layer.ts";
import { CloseCode, ProtocolError } from "./close_codes.ts";
import type { IncomingFrame } from "./_frame_gate.ts";
import { log } from "../telemetry/log.ts";
import { isBackendUnavailable } from "../storage/unavailable.ts";
import { misnamedHooks, warnMisnamedHooks } from "./_hook_names.ts";
import { eventHandlerKey } from "./_event_names.ts";

/** A consumer's handler for one layer event type. */
export type EventHandler = (event: LayerEvent) => void | Promise<void>;

/** Why `connect` refused a socket: the handshake's status and the reason logged with it. */
export interface ConnectRefusal {
  status: 403 | 500 | 503;
  reason: string;
  /** The close code the consumer refused with (a `ProtocolError`'s, or `close(code)` in it). */
  code?: number;
  /** What the hook threw, for a 500 or a 503. */
  error?: unknown;
}

/**
 * The hooks `consumer` builds for `conn`. A consumer that throws, or returns something other
 * than its hooks (an `async` consumer's promise, `undefined`), fails in `connect`'s place: the
 * handshake is refused with 500 and logged, and what was taken for the socket (its channel, its
 * place under the caps) is given back as on any refusal. Type-checked code cannot return a
 * promise here, but `deno run` does not type-check, and its hooks would be ignored in silence.
 */
export function hooksOf(consumer: Consumer, conn: Connection): ConsumerHooks {
  let hooks: unknown;
  try {
    hooks = consumer(conn);
  } catch (error) {
    return { connect: () => Promise.reject(error) };
  }
  const problem = notHooks(hooks);
  if (problem === null) {
    const misnamed = warnMisnamedHooks(consumer, hooks as object, conn.scope.path);
    if (misnamed !== null) misnamedHooks.set(conn, misnamed);
    return hooks as ConsumerHooks;
  }
  const error = new TypeError(
    `The consumer of ${conn.scope.path} returned ${problem}, not its hooks: a consumer is ` +
      "`(conn) => ({ connect, receive, ... })`, called synchronously; do async work in `connect`",
  );
  return { connect: () => Promise.reject(error) };
}

// What is wrong with a consumer's result, or null when it is a hooks object.
function notHooks(hooks: unknown): string | null {
  if (hooks === null || hooks === undefined) return String(hooks);
  if (typeof hooks !== "object") return `a ${typeof hooks}`;
  if (Array.isArray(hooks)) return "an array";
  if (typeof (hooks as { then?: unknown }).then === "function") return "a promise";
  return null;
}

/**
 * Runs the `connect` hook; resolves `null` when the socket is accepted (`true` or nothing), else
 * how the handshake must be refused: 403 when the consumer said no (`false`, or a
 * {@linkcode ProtocolError} with its message), 503 when what it needed was away (Redis, a full
 * disk: not a bug, and said in one line), 500 when the hook failed otherwise or returned
 * anything else (the error is logged).
 */
export async function runConnectHook(
  hooks: ConsumerHooks,
  path: string,
): Promise<ConnectRefusal | null> {
  try {
    const verdict: unknown = await hooks.connect?.();
    if (verdict === undefined || verdict === true) return null;
    if (verdict === false) {
      return { status: 403, reason: "Refused by the consumer: its connect hook said no" };
    }
    // `"no"`, `0` or a `Response`: meant as a refusal, most likely, and not to be let in on a
    // guess. Type-checked code cannot return it; `deno run` does not type-check.
    throw new TypeError(
      `The connect hook of ${path} returned ${Deno.inspect(verdict, { depth: 0 })}: it returns ` +
        "false to refuse the socket, or true or nothing to accept it",
    );
  } catch (error) {
    if (error instanceof ProtocolError) {
      return { status: 403, reason: error.message, code: error.code };
    }
    if (isBackendUnavailable(error)) {
      log.warn(`Consumer connect for ${path} met an unavailable backend: ${messageOf(error)}`);
    } else log.error(`Consumer connect failed for ${path}`, error);
    return failedConnect(error);
  }
}

/**
 * How a handshake is refused when its `connect` failed with `error` (thrown, or a call it did
 * not await that failed while it ran), once that is logged: 503 when what it needed was away,
 * else 500.
 */
export function failedConnect(error: unknown): ConnectRefusal {
  if (isBackendUnavailable(error)) {
    return { status: 503, reason: "Server busy: a backend is unavailable; retry later", error };
  }
  return { status: 500, reason: "The consumer's connect hook failed (logged above)", error };
}

/**
 * Runs the `disconnect` hook; a failure is logged, never thrown, and resolved with (else
 * `undefined`) for the communicator to raise.
 */
export async function runDisconnectHook(
  hooks: ConsumerHooks,
  code: number,
  path: string,
): Promise<unknown> {
  try {
    await hooks.disconnect?.(code);
    return undefined;
  } catch (error) {
    log.error(`Consumer disconnect failed on ${path}`, error);
    return error ?? new Error(`disconnect threw ${error}`);
  }
}

/**
 * The consumer's handler for events of `type`, if it has one of its own: under the type itself,
 * else under the type as Channels names its method (a `"notify.user"` event reaches
 * `"notify_user"`'s handler, and a `"notify_user"` one `"notify.user"`'s, as both reach a
 * Channels consumer's `notify_user`). Throws a `TypeError` when what it has under that name is
 * no function (the connection fails with it).
 */
export function ownEventHandler(hooks: ConsumerHooks, type: string): EventHandler | undefined {
  const events = hooks.events;
  if (events === undefined) return undefined;
  const key = eventHandlerKey(events, type);
  if (key !== undefined) {
    const handler = events[key];
    if (typeof handler === "function") return handler;
    // Thrown where the event is delivered: the socket fails (1011) with this, not with
    // "handler.call is not a function".
    throw new TypeError(
      `The consumer's events[${JSON.stringify(type)}] is ${Deno.inspect(handler)}, not a function`,
    );
  }
  if (typeof events[type] === "function" && !(type in Object.prototype)) {
    warnInherited(events, type);
  }
  return undefined;
}

// Events objects already warned about: one line per object and type, not one per event.
const warnedInherited = new WeakMap<object, Set<string>>();

// A class instance given as `events` has its handlers on its prototype, where they are never
// looked for: say so once rather than let its events vanish.
function warnInherited(events: object, type: string): void {
  const warned = warnedInherited.get(events) ?? new Set<string>();
  if (warned.has(type)) return;
  warned.add(type);
  warnedInherited.set(events, warned);
  log.warn(
    `Event "${type}" not handled: its handler is inherited, and only the events object's own ` +
      "properties are handlers (give a plain object, e.g. { [type]: method })",
  );
}

/**
 * Hands an accepted frame to the hook for its kind: `receiveBytes` for binary, else
 * `receiveJson` (once parsed) or `receive`. A frame no hook takes is a {@linkcode ProtocolError}.
 * Not async: a hook that finishes synchronously costs no promise.
 */
export function dispatchFrame(hooks: ConsumerHooks, data: IncomingFrame): void | Promise<void> {
  if (typeof data !== "string") {
    if (!hooks.receiveBytes) {
      throw new ProtocolError("Binary frames are not accepted here", CloseCode.UNSUPPORTED_DATA);
    }
    // Called on `hooks`, as every hook is: a class's method reads its instance as `this`.
    if (data instanceof Blob) {
      return data.arrayBuffer().then((buffer) => hooks.receiveBytes!(new Uint8Array(buffer)));
    }
    return hooks.receiveBytes(new Uint8Array(data));
  }
  if (hooks.receiveJson) {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      throw new ProtocolError("Message must be JSON");
    }
    return hooks.receiveJson(value);
  }
  return hooks.receive?.(data);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
