/**
 * When a socket's place under the connection caps (`connection_caps.ts`) is given back: once
 * the socket is gone, which is not always when its connection finished.
 */
import type { CapLease } from "./connection_caps.ts";
import type { SocketLike } from "./_socket.ts";
import { SOCKET_CLOSING } from "./_connection_flags.ts";

/**
 * How long the cap's place of a socket that never opened stays taken. Deno keeps its
 * descriptor until the process exits and never tells its end, so waiting for that would take
 * the place for good: every such socket would lock its address out a little more (an office
 * behind one NAT address, for good). Held a while, it still bounds how fast one address can
 * make Deno keep descriptors: 256 a minute at the default cap.
 */
export const NEVER_OPENED_PLACE_MS = 60_000;

/**
 * Gives a cap's place back once the socket is gone. A client that never answers the server's
 * close frame keeps its socket open in Deno (its descriptor and buffers) until it goes itself,
 * long after its connection finished: such a socket keeps its place under the caps until then,
 * which is what bounds how many of them one client may hold. A socket that never opened has
 * no client any more: its place is given back after {@linkcode NEVER_OPENED_PLACE_MS}.
 */
export function releaseWithSocket(
  lease: CapLease,
  socket: SocketLike | null,
  neverOpened: boolean,
  neverOpenedPlaceMs: number = NEVER_OPENED_PLACE_MS,
): void {
  if (socket === null || socket.readyState !== SOCKET_CLOSING) return lease.release();
  if (neverOpened) {
    // Not a reason to keep the process up: a stop exits with it.
    Deno.unrefTimer(setTimeout(lease.release, neverOpenedPlaceMs));
    return;
  }
  socket.onclose = () => {
    socket.onclose = null;
    lease.release();
  };
}
