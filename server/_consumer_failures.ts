/**
 * How a consumer refused or failed, kept beside the log line for a test to see, as Channels'
 * communicator gives the close code of a refusal and re-raises a consumer's exception (the log
 * of a test is usually silent). Weak: nothing is kept once the request or socket is gone.
 */
import type { ConnectRefusal } from "./_hook_calls.ts";
import type { SocketLike } from "./_socket.ts";
import { misnamedHooks } from "./_hook_names.ts";

/** A refused handshake's refusal (its close code, what `connect` threw), by its request. */
export const consumerRefusals: WeakMap<Request, ConnectRefusal> = new WeakMap();

/**
 * What a hook threw after the handshake was accepted (the socket closes with 1011), by the
 * socket; by the connection while it has none yet.
 */
export const consumerFailures: WeakMap<SocketLike | object, unknown> = new WeakMap();

/**
 * What a hook threw once the socket had closed, by the socket: the `disconnect` hook, or a hook
 * that was still running at the close. The first one only; the communicator's `disconnect()`
 * and `waitForClose()` raise it, as Channels' communicator raises what the app raised.
 */
export const lateFailures: WeakMap<SocketLike | object, unknown> = new WeakMap();

/**
 * What is said of the first event that reached a socket with no handler for its type, by the
 * socket (by the connection while it has none): a communicator that waits in vain for a frame
 * says so, as Channels' raises "No handler for message type".
 */
export const unhandledEvents: WeakMap<SocketLike | object, string> = new WeakMap();

/** A stream follower as a report sees it: the group it waits to enter, `null` once entered. */
export interface AwaitedEntry {
  readonly unenteredGroup: string | null;
}

/**
 * The stream followers that held their group's events before their `enter()`, by the socket (by
 * the connection while it has none): a communicator that waits in vain for a frame says which
 * were never entered, as their events wait for that for good without a word.
 */
export const heldBeforeEntry: WeakMap<SocketLike | object, Set<AwaitedEntry>> = new WeakMap();

/** Notes that `follower`, of the connection whose reports go under `key`, held an event unentered. */
export function noteHeldBeforeEntry(key: object, follower: AwaitedEntry): void {
  let followers = heldBeforeEntry.get(key);
  if (followers === undefined) heldBeforeEntry.set(key, followers = new Set());
  followers.add(follower);
}

/**
 * Files a connection's reports under its socket too, once it has one: a communicator holds the
 * socket. The followers' set is the same one, so those noted later are found under both.
 */
export function fileUnderSocket(connection: object, socket: SocketLike): void {
  for (const reports of [consumerFailures, unhandledEvents, misnamedHooks, heldBeforeEntry]) {
    // `has`: a consumer may throw `undefined`
    if (reports.has(connection)) {
      (reports as WeakMap<object, unknown>).set(socket, reports.get(connection));
    }
  }
}

/**
 * Moves what is kept of a consumer's failures from `from` to `to`: from a connection whose
 * handshake was not upgraded (its client left) to its request, the one key a communicator holds
 * when there is no socket; from that request to the communicator's socket.
 */
export function handFailuresOver(from: object, to: object): void {
  for (const failures of [consumerFailures, lateFailures]) {
    if (!failures.has(from)) continue; // `has`: a consumer may throw `undefined`
    failures.set(to, failures.get(from));
    failures.delete(from);
  }
}
