/**
 * How the in-process streams (`memory.ts`) read a group's stream back from the store: its
 * window, and whether its epoch is kept. It is kept when the run that last wrote it stopped
 * cleanly (or is this run) and this run could name itself in the group's record before giving
 * any offset; otherwise the group takes a new epoch, its stored events kept for the last-N
 * history. Stored events before a gap are left out. A read that fails is tried again before the
 * group gives up on what is stored and takes a new epoch.
 */
import type { Store } from "../../storage/store.ts";
import { log } from "../../telemetry/log.ts";
import { EMPTY_STREAM_KEPT_MS, newEpoch } from "./contract.ts";
import { RetainedWindow } from "./_window.ts";
import type { WrittenState } from "./_write_rounds.ts";
import {
  expiringRecord,
  keptRecord,
  ranClean,
  readStoredStream,
  recordKey,
  type StreamRecord,
  unbrokenFrom,
} from "./_store_layout.ts";

/** A group's window as read from the store, and what the read did there. */
export interface WindowFromStore {
  window: RetainedWindow;
  /** This run wrote the group's record (so a clean stop must be marked for it). */
  claimed: boolean;
  /** The state has something to write now (a new epoch's record, chunks to delete). */
  writeSoon: boolean;
}

/** Reads of a group's stored stream before it takes a new epoch, and the pause between them. */
const READ_ATTEMPTS = 3;
const READ_RETRY_MS = 100;

/**
 * {@linkcode readWindowFromStore}, tried again when the store cannot be read: a room let go from
 * memory (`_kept_groups.ts`) is read back while its clients follow it. When every read fails,
 * the group takes a new epoch from offset 0, its stored chunks unknown (see `storedUnknown`),
 * and has something to write soon. Never rejects.
 */
export async function loadWindowFromStore(
  from: StoreOfRun,
  group: string,
  state: WrittenState,
): Promise<WindowFromStore> {
  for (let attempt = 1;; attempt++) {
    try {
      return await readWindowFromStore(from, group, state);
    } catch (error) {
      if (attempt < READ_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, READ_RETRY_MS * attempt));
        continue;
      }
      log.warn(`Stream of "${group}" could not be read from the store: a new epoch`, error);
      state.dirty = true;
      state.storedUnknown = true;
      return { window: new RetainedWindow(newEpoch(), 0), claimed: false, writeSoon: true };
    }
  }
}

/** The store a run reads its groups from, the run, and the idle expiry of what it writes. */
export interface StoreOfRun {
  store: Store;
  run: string;
  idleExpiryMs: number;
}

/**
 * Reads `group`'s stream from the store for the run, and sets in `state` what was found there
 * (its chunks, what is written, what is stale); a record it claims keeps the life it had left.
 * Rejects when the store cannot be read.
 */
export async function readWindowFromStore(
  { store, run, idleExpiryMs }: StoreOfRun,
  group: string,
  state: WrittenState,
): Promise<WindowFromStore> {
  const { record: meta, chunks, events: stored } = await readStoredStream(store, group);
  state.chunks = chunks;
  if (meta === null) {
    // Events without a record are not this stream's any more.
    state.stale = state.chunks.map((chunk) => chunk.key);
    state.chunks = [];
    state.dirty = state.stale.length > 0;
    return { window: new RetainedWindow(newEpoch(), 0), claimed: false, writeSoon: false };
  }
  const ours = meta.run === run;
  const clean = ours || await ranClean(store, meta.run);
  const offset = Math.max(meta.offset, stored.at(-1)?.[1].offset ?? 0);
  const unused = offset === 0 && stored.length === 0;
  // A record that names this run already (a group let go from memory, read back) needs no
  // claim: a write that failed there would change its epoch in the middle of the run.
  // An unused room's record is kept a day from its last read; a used one keeps what it has left.
  const claim = unused
    ? {
      record: expiringRecord({ epoch: meta.epoch, offset, run }, EMPTY_STREAM_KEPT_MS),
      expireInMs: EMPTY_STREAM_KEPT_MS,
    }
    : keptRecord({ epoch: meta.epoch, offset, run, expiresAt: meta.expiresAt }, idleExpiryMs);
  const claimed = clean && !ours && await claimRecord(store, group, claim);
  const kept = clean && (ours || claimed);
  const window = new RetainedWindow(kept ? meta.epoch : newEpoch(), 0);
  const from = unbrokenFrom(stored, offset);
  if (from > 0) {
    const first = from < stored.length ? stored[from][1].offset : offset + 1;
    state.stale = chunks.filter((chunk) => chunk.last < first).map((chunk) => chunk.key);
    state.chunks = chunks.filter((chunk) => chunk.last >= first);
    log.warn(`Stream of "${group}": ${from} stored event(s) before a gap left out`);
  }
  // Under a new epoch the kept events are that epoch's: a client takes its position from them.
  const epoch = window.epoch;
  for (let i = from; i < stored.length; i++) {
    const [time, event] = stored[i];
    window.append(event.epoch === epoch ? event : { ...event, epoch }, time);
  }
  // Not trimmed here: what was written is what the group's own publishes kept, and their
  // retention is not known until the next one (the streams' default may keep less).
  window.offset = offset;
  state.written = offset;
  if (!clean) {
    log.info(`Stream of "${group}" was last written by a run that stopped abruptly: new epoch`);
  }
  if (kept) {
    state.recordWritten = true;
    state.recordExpires = unused;
    // Written again, with the whole idle expiry, by the first round that writes chunks: the
    // claim kept the life the record had left.
    state.recordWrittenAt = 0;
  }
  const writeSoon = !kept || state.stale.length > 0;
  if (writeSoon) state.dirty = true;
  return { window, claimed, writeSoon };
}

// Names this run in the group's record before the run gives the group any offset, so that a
// crash from then on, even before this run's first write, gives the group a new epoch. False
// when the record could not be written: the group then takes a new epoch itself.
async function claimRecord(
  store: Store,
  group: string,
  { record, expireInMs }: { record: StreamRecord; expireInMs: number },
): Promise<boolean> {
  try {
    await store.set(recordKey(group), record, { expireInMs });
    return true;
  } catch (error) {
    log.warn(`Stream of "${group}": its record could not be written; a new epoch`, error);
    return false;
  }
}
