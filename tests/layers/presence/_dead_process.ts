/**
 * The case every shared presence backend passes: a process that dies without a word (its
 * heartbeat stops, nothing is removed) loses its users once their TTL runs out.
 */
import { assertEquals } from "@std/assert";
import type { PresenceBackend } from "../../../layers/presence/contract.ts";

/** A backend that tells of changes made by other processes (the shared ones do). */
export type WatchingBackend = PresenceBackend & Required<Pick<PresenceBackend, "watch">>;

/**
 * Tracks users on `dying` and `survivor` (two processes over one shared state, with a short
 * TTL), closes `dying` and asserts the survivor sees its users expire, site-wide and in a room.
 * Closes `survivor` at the end.
 */
export async function assertDeadProcessExpires(
  dying: PresenceBackend,
  survivor: WatchingBackend,
): Promise<void> {
  const changed = Promise.withResolvers<string[]>();
  const changedInRoom = Promise.withResolvers<string[]>();
  survivor.watch((users, topic) => {
    if (topic === "site") changed.resolve(users);
    else if (topic === "chat.lobby") changedInRoom.resolve(users);
  });
  await dying.add({ username: "ghost", connectionId: "c1", meta: {} });
  await dying.add({ username: "ghost", connectionId: "c3", meta: {}, topic: "chat.lobby" });
  await survivor.add({ username: "alive", connectionId: "c4", meta: {}, topic: "chat.lobby" });
  await survivor.add({ username: "alive", connectionId: "c2", meta: {} });
  assertEquals((await survivor.online()).sort(), ["alive", "ghost"]);
  await dying.close(); // stops its heartbeat without removing anything, like a SIGKILL
  assertEquals(await changed.promise, ["ghost"]);
  assertEquals(await changedInRoom.promise, ["ghost"], "the room's ghost expires too");
  assertEquals(await survivor.online(), ["alive"]);
  assertEquals(await survivor.online("chat.lobby"), ["alive"]);
  await survivor.close();
}
