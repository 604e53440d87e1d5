/**
 * How a consumer refused or failed, kept beside the log line for a test to see, as Channels'
 * communicator gives the close code of a refusal and re-raises a consumer's exception (the log
 * of a test is usually silent). Weak: nothing is kept once the request or socket is gone.
 */
import type { ConnectRefusal } from "./_hook_calls.ts";
import type { SocketLike } from "./_socket.ts";

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
