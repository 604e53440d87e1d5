/**
 * Stamps: one store key that every change of one kind replaces with a new unique value. A process
 * that cannot hear another's sends (a server on an in-process layer, beside a command run in
 * another process) reads that one key now and then; when it changed, it reads again what it
 * holds that the change may have ended. One key, however many changes: none can hide another.
 */
import { sortableId, type Store, type StoreChange, type StoreKey } from "./store.ts";

/** The write that replaces the stamp at `key`: made after the writes it announces. */
export function newStamp(key: StoreKey): StoreChange {
  return { key, value: sortableId() };
}

/** The stamp at `key`, or `null` when nothing ever stamped it. */
export async function readStamp(store: Store, key: StoreKey): Promise<string | null> {
  const stamp = await store.get<unknown>(key);
  return stamp === null ? null : String(stamp);
}
