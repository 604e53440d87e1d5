/**
 * Waiting for room in a socket: a replay (what a slow reader missed, a gap read) sends each
 * frame only once the socket can take it without going over its bound, so the replay itself
 * never overflows the socket, however long its client pauses.
 */
import type { Connection } from "./consumer.ts";

/** How often a replay that waits for room in its socket looks again, in ms. */
const ROOM_CHECK_MS = 50;

/**
 * Resolves once `conn` can take `bytes` more without going over its bound (a frame larger than
 * the whole bound: once nothing waits), true; or false once the socket has closed.
 */
export async function waitForRoom(conn: Connection, bytes: number): Promise<boolean> {
  while (!conn.closed && conn.sendCapacity < bytes) {
    await new Promise((resolve) => setTimeout(resolve, ROOM_CHECK_MS));
  }
  return !conn.closed;
}
