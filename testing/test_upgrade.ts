/**
 * The upgrade seam for apps under test: a {@linkcode Communicator} hands its fake socket to
 * `testUpgrade` through its own `Request`, and the app's handshake takes it from there, as
 * Deno's `upgradeWebSocket` would make a real one.
 */
import type { UpgradeWebSocket } from "../server/websocket_route.ts";
import { denoCanAnswer } from "../server/handshake.ts";
import type { FakeSocket } from "./fake_socket.ts";

// Each communicator hands its socket to the upgrade seam through its own Request object.
const waiting = new WeakMap<Request, FakeSocket>();

/** Offers `socket` to the seam for the handshake of `request`. */
export function offerSocket(request: Request, socket: FakeSocket): void {
  waiting.set(request, socket);
}

/** Withdraws the offer for `request`: true when the seam had not taken its socket. */
export function withdrawSocket(request: Request): boolean {
  return waiting.delete(request);
}

/** The upgrade seam for apps under test: pass it to `createApp({ ..., upgrade: testUpgrade })`. */
export const testUpgrade: UpgradeWebSocket = (
  request,
  options = {},
): ReturnType<UpgradeWebSocket> => {
  const socket = waiting.get(request);
  if (socket === undefined) {
    throw new Error("This app upgrades only requests made by a Communicator");
  }
  waiting.delete(request); // taken: the communicator sees its socket went through this seam
  // As Deno's does: a subprotocol it cannot find in the offer (split at ", ") throws.
  if (options.protocol && !denoCanAnswer(request, options.protocol)) {
    throw new TypeError(`Protocol '${options.protocol}' not in the request's protocol list`);
  }
  // As Deno's does: the chosen subprotocol is answered in the 101.
  const headers: HeadersInit = options.protocol
    ? { "sec-websocket-protocol": options.protocol }
    : {};
  return { socket, response: new Response(null, { status: 101, headers }) };
};
