/**
 * Handshakes made in-process by the testing communicator. No server received them, so Deno's
 * `upgradeWebSocket` would answer one with a socket that never opens, kept by its connection
 * until `OPEN_TIMEOUT_MS` (an `app.close()` waits that long): Deno's upgrade refuses them
 * instead (`websocket_route.ts`), and the communicator names the seam its app lacks.
 */

// By request: `true` once Deno's own upgrade was asked for it.
const inProcess = new WeakMap<Request, boolean>();

/** Marks `request` as a handshake no server received. */
export function markInProcess(request: Request): void {
  inProcess.set(request, false);
}

/** True when `request` was made in-process; it is remembered that Deno's upgrade saw it. */
export function refusedByDenoUpgrade(request: Request): boolean {
  if (!inProcess.has(request)) return false;
  inProcess.set(request, true);
  return true;
}

/** True when Deno's own upgrade refused `request`, made in-process. */
export function reachedDenoUpgrade(request: Request): boolean {
  return inProcess.get(request) === true;
}
