/**
 * Moves the streams that `--workers N` kept in Deno KV before its parent became their
 * sequencer (each Worker committed every message: `KvStreams`' keys) into the layout of
 * in-process streams (`MemoryStreams`), which the sequencer reads. Run by the parent before
 * its Workers start, so an upgrade keeps every room's offsets, epoch and retained messages.
 *
 * A group the in-process layout already holds keeps what it holds (a later run wrote it); its
 * old keys are removed either way, so the move happens once. The moved record names a run
 * marked clean: those messages were committed one by one, none was waiting to be written.
 */
import type { Store, StoreChange, StoreKey } from "../../storage/store.ts";
import { DEFAULT_IDLE_EXPIRY_MS, newEpoch, type StreamEvent } from "./contract.ts";
import { RetainedWindow } from "./_window.ts";
import {
  chunkKey,
  markRunClean,
  MAX_CHUNK_BYTES,
  recordChange,
  recordKey,
} from "./_store_layout.ts";

interface OldMeta {
  epoch: string;
  offset: number;
}

interface OldEvent {
  /** When it was published, ms since the epoch. */
  t: number;
  /** Its JSON, with its offset and epoch. */
  e: string;
}

/**
 * Moves the old Workers' streams under `prefix` (`REDIS_PREFIX`), to expire `idleExpiryMs`
 * from now as if written now; resolves with how many.
 */
export async function importKvStreams(
  store: Store,
  prefix: string,
  idleExpiryMs: number = DEFAULT_IDLE_EXPIRY_MS,
): Promise<number> {
  const records = await store.list<OldMeta>([prefix, "stream_meta"]);
  if (records.length === 0) return 0;
  // One run for everything moved, marked clean before any record names it.
  const run = `imported-${newEpoch()}`;
  await markRunClean(store, run);
  let moved = 0;
  for (const { key, value: meta } of records) {
    const group = String(key[2]);
    const events = await store.list<OldEvent>([prefix, "stream", group]);
    const changes: StoreChange[] = [];
    if (await store.get(recordKey(group)) === null) {
      const stored = events.map((entry) => entry.value);
      changes.push(...newLayout(group, meta, stored, { run, idleExpiryMs }));
      moved++;
    }
    const old: StoreKey[] = [...events.map((entry) => entry.key), key];
    for (const oldKey of old) changes.push({ key: oldKey, delete: true });
    await store.writeMany(changes);
  }
  return moved;
}

function newLayout(
  group: string,
  meta: OldMeta,
  events: OldEvent[],
  { run, idleExpiryMs }: { run: string; idleExpiryMs: number },
): StoreChange[] {
  const window = new RetainedWindow(meta.epoch, 0);
  for (const { t, e } of events) window.append(JSON.parse(e) as StreamEvent, t, e);
  const changes: StoreChange[] = window.chunksAfter(0, MAX_CHUNK_BYTES).map(({ last, bytes }) => ({
    key: chunkKey(group, last),
    value: bytes,
    expireInMs: idleExpiryMs,
  }));
  const record = { epoch: meta.epoch, offset: meta.offset, run };
  changes.push(recordChange(group, record, idleExpiryMs));
  return changes;
}
