/**
 * How the in-process streams (`memory.ts`) lie in their store (Deno KV), for them and for the
 * move of older layouts into this one (`import_kv_streams.ts`):
 *
 * - `["stream_meta", group]` = `{epoch, offset, run}`, the group's record;
 * - `["stream", group, <last offset, 16 digits>]` = UTF-8 JSON of `[[time, event], ...]`, at
 *   most {@linkcode MAX_CHUNK_BYTES} per value;
 * - a chunk expires the streams' idle expiry (`HISTORY_IDLE_DAYS`) after it was written, and so
 *   does the record: a run writes the record again at least every
 *   {@linkcode recordRenewedEveryMs} while it writes chunks, so a room left for that long (less
 *   at most that renewal) leaves nothing. A record written before the newest chunk expires
 *   first, and one read past its `expiresAt` is taken for none whatever the store still shows,
 *   so the group then takes a new epoch rather than give that chunk's offsets again;
 * - `["stream_runs", run]` = `"clean"`, once that run shut down gracefully, when a record names it
 *   (a run that wrote none leaves no mark: nothing would read it). It expires after
 *   {@linkcode CLEAN_MARK_KEPT_MS}, so deploys leave no key for good.
 */
import type { Store, StoreChange, StoreKey } from "../../storage/store.ts";
import type { StreamEvent } from "./contract.ts";

/** A group's record: its epoch, its latest offset written, and the run that last opened it. */
export interface StreamRecord {
  epoch: string;
  offset: number;
  run: string;
  /**
   * When the record counts as gone (ms since the epoch), a little before the store's own expiry.
   * Deno KV deletes an expired key when it likes, in no set order, and a read of the record and
   * a list of the chunks are two reads: an expired record can be seen without the chunks written
   * after it, and its offset would be given again. Before this time no such chunk has expired
   * (each expires later than the record), so a read finds them all. None: written before 0.16,
   * without an expiry.
   */
  expiresAt?: number;
}

/** A stored chunk's key, and the offset of its last event. */
export interface StoredChunk {
  key: StoreKey;
  last: number;
}

/** One group as its store holds it. */
export interface StoredStream {
  /** Its record, `null` when there is none (its chunks, if any, are not its own any more). */
  record: StreamRecord | null;
  /** Its chunks, oldest first. */
  chunks: StoredChunk[];
  /** Their events, oldest first, with the times they were published (ms since the epoch). */
  events: [number, StreamEvent][];
}

/** A stored chunk's most bytes: a Deno KV value stays under 64 KiB; a 10,000-character message fits. */
export const MAX_CHUNK_BYTES = 48 * 1024;
const decoder = new TextDecoder();

/** The key of a stored chunk of `group` whose last event has offset `last`. */
export function chunkKey(group: string, last: number): StoreKey {
  return ["stream", group, String(last).padStart(16, "0")];
}

/** The prefix of every stored chunk of `group`. */
export function chunkPrefix(group: string): StoreKey {
  return ["stream", group];
}

/** The key of `group`'s record. */
export function recordKey(group: string): StoreKey {
  return ["stream_meta", group];
}

/**
 * The change that writes `group`'s record, to expire after `expireInMs` unless written again:
 * `EMPTY_STREAM_KEPT_MS` (`contract.ts`) for a group never published to, else the idle expiry.
 */
export function recordChange(group: string, record: StreamRecord, expireInMs: number): StoreChange {
  return { key: recordKey(group), value: expiringRecord(record, expireInMs), expireInMs };
}

/**
 * `record` with its `expiresAt` for a write that expires after `expireInMs`: taken before the
 * write, and a minute early at most (an eighth of it when shorter) for clocks that differ a
 * little (Deno Deploy's machines).
 */
export function expiringRecord(record: StreamRecord, expireInMs: number): StreamRecord {
  return { ...record, expiresAt: Date.now() + expireInMs - expiryMargin(expireInMs) };
}

/**
 * `record` written again (a new run claims it) with the life it has left: a read is no use of
 * the room, so it must not give the record a new idle expiry, or a room only read at each
 * restart would keep its epoch for good. A record without `expiresAt` (before 0.16) gets the
 * whole `expireInMs`. Resolves to the record and the store's expiry for it.
 */
export function keptRecord(
  record: StreamRecord,
  expireInMs: number,
): { record: StreamRecord; expireInMs: number } {
  if (record.expiresAt === undefined) {
    return { record: expiringRecord(record, expireInMs), expireInMs };
  }
  const left = record.expiresAt + expiryMargin(expireInMs) - Date.now();
  return { record, expireInMs: Math.max(1, Math.round(left)) };
}

function expiryMargin(expireInMs: number): number {
  return Math.min(60_000, expireInMs / 8);
}

/**
 * How often a run that writes a group's chunks writes its record again, so that the record
 * expires with them (see the module doc): an eighth of the idle expiry, at most a day. A busy
 * room pays one more write a day.
 */
export function recordRenewedEveryMs(idleExpiryMs: number): number {
  return Math.min(idleExpiryMs / 8, 24 * 60 * 60 * 1000);
}

/**
 * Reads `group`'s record and chunks, and the chunks' events; a record past its `expiresAt`, once
 * both reads are done, is none.
 */
export async function readStoredStream(store: Store, group: string): Promise<StoredStream> {
  const [stored, entries] = await Promise.all([
    store.get<StreamRecord>(recordKey(group)),
    store.list<Uint8Array>(chunkPrefix(group)),
  ]);
  const expired = stored?.expiresAt !== undefined && Date.now() >= stored.expiresAt;
  const record = expired ? null : stored;
  return {
    record,
    chunks: entries.map((entry) => ({ key: entry.key, last: Number(entry.key[2]) })),
    events: entries.flatMap((entry) =>
      JSON.parse(decoder.decode(entry.value)) as [number, StreamEvent][]
    ),
  };
}

/**
 * How long the mark of a graceful stop is kept (30 days). Only the records of rooms no later run
 * opened still name that run: such a room, opened after the mark expired, is taken for one a
 * crash left, so it keeps its events but takes a new epoch (a client that held the old one is
 * told `complete: false`).
 */
export const CLEAN_MARK_KEPT_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * The index of the first of `events` (oldest first) that follow on from one another, without a
 * gap or a repeat, up to `offset`: a window's offsets are consecutive, and a crash in the
 * middle of a write round (several commits) can leave an expired chunk beside a newer one, or
 * a record ahead of its chunks. `events.length` when the last is not at `offset`.
 */
export function unbrokenFrom(events: readonly [number, StreamEvent][], offset: number): number {
  let from = events.length;
  for (let expected = offset; from > 0 && events[from - 1][1].offset === expected; expected--) {
    from--;
  }
  return from;
}

/** Marks `run` as shut down gracefully (for {@linkcode CLEAN_MARK_KEPT_MS}). */
export function markRunClean(store: Store, run: string): Promise<void> {
  return store.set(["stream_runs", run], "clean", { expireInMs: CLEAN_MARK_KEPT_MS });
}

/** Whether `run` shut down gracefully. */
export async function ranClean(store: Store, run: string): Promise<boolean> {
  return await store.get<string>(["stream_runs", run]) === "clean";
}
