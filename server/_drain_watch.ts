/**
 * The watch over a socket whose events were dropped because it read too slowly: once it has
 * taken in most of what waited (half its bound), its consumer's `drained` hook may send them
 * again; one that takes in nothing for `stalledReaderSeconds` has a client gone without a word
 * (a phone in a tunnel), which Deno's pings would never tell, since they wait behind the unsent
 * data: it is closed with 1013, and its presence goes. One timer, only while a socket is behind.
 *
 * What it sees is Deno's own queue, behind the kernel's buffers (megabytes on a fast link): a
 * client that reads, but is more than `stalledReaderSeconds` behind what waits in those, looks
 * the same, and is closed too. Deno's ping, waiting behind that data, would close it as well.
 */

/** How often a socket that had events dropped is looked at. */
export const DRAIN_CHECK_MS = 100;
/** Seconds a socket behind on its events may take in nothing, unless its limits say. */
export const STALLED_READER_SECONDS = 30;

/** What the watch reads of a connection, and what it tells it. */
export interface DrainWatched {
  /** False once the socket is closing, closed, or its consumer failed: the watch ends. */
  live(): boolean;
  /** Bytes waiting to go out (however far above the bound). */
  unsentBytes(): number;
  /**
   * Whether the socket had room since the last call: a client reading a live feed frees room
   * that new frames fill at once, so what waits may never be seen to go down.
   */
  hadRoom(): boolean;
  /** True once the socket can take half its bound again. */
  caughtUp(): boolean;
  /** Hands the catch-up to the consumer; false when it cannot take it yet (its queue is full). */
  resume(): boolean;
  /** Closes a socket that took in nothing for `seconds`. */
  stalled(seconds: number): void;
  /** The watch is over (caught up, stalled, or the socket ended). */
  done(): void;
}

// The pending check of each watch, by its key, so that a socket that ends stops its watch at
// once rather than at the next check (a test's sanitizer counts a timer left behind as a leak).
const pendingChecks = new WeakMap<object, ReturnType<typeof setTimeout>>();

/**
 * Watches `socket` until it catches up, stalls for `stalledSeconds`, or ends; `key` (its
 * connection) is what {@linkcode stopDrainWatch} stops it by.
 */
export function watchDrain(
  key: object,
  socket: DrainWatched,
  stalledSeconds = STALLED_READER_SECONDS,
): void {
  let unsent = socket.unsentBytes();
  // The monotonic clock: a wall clock stepped forward would close a socket that reads.
  let progressAt = performance.now();
  socket.hadRoom(); // from now on
  const check = () => {
    pendingChecks.delete(key);
    if (!socket.live()) return socket.done();
    // Any byte taken in is progress, however far above the bound the socket still is; and
    // nothing unsent is no stall (the drops were the consumer's own queue being full).
    const now = socket.unsentBytes();
    if (now < unsent || now === 0 || socket.hadRoom()) progressAt = performance.now();
    unsent = now;
    if (performance.now() - progressAt >= stalledSeconds * 1000) {
      socket.done();
      return socket.stalled(stalledSeconds);
    }
    if (socket.caughtUp() && socket.resume()) return socket.done();
    pendingChecks.set(key, setTimeout(check, DRAIN_CHECK_MS));
  };
  pendingChecks.set(key, setTimeout(check, DRAIN_CHECK_MS));
}

/** Ends the watch `key` started, if one runs: its socket ended. */
export function stopDrainWatch(key: object): void {
  clearTimeout(pendingChecks.get(key));
  pendingChecks.delete(key);
}
