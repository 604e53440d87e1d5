/**
 * How the in-process streams (`memory.ts`) write their windows to the store: in rounds, every
 * stream's new events in one `writeMany`. A round starts at most `delayMs` after the first event
 * it writes was published, or, when the round before is still writing then, as soon as that one
 * ends: an event is in the store by the end of that round.
 * A round changes a group's state only once it is written, so a round that fails is planned
 * again, whole, by the next; one written in part (several commits) has what it wrote removed
 * first. Failures are counted and said once per outage.
 *
 * How the streams lie in the store: `_store_layout.ts`.
 */
import {
  PartlyWrittenError,
  type Store,
  type StoreChange,
  type StoreKey,
} from "../../storage/store.ts";
import { log } from "../../telemetry/log.ts";
import { Histogram } from "../../telemetry/metrics.ts";
import type { RetainedWindow } from "./_window.ts";
import {
  chunkKey,
  chunkPrefix,
  MAX_CHUNK_BYTES,
  recordChange,
  recordRenewedEveryMs,
  type StoredChunk,
} from "./_store_layout.ts";
import { EMPTY_STREAM_KEPT_MS } from "./contract.ts";

/** What a round reads and writes of one group's state. */
export interface WrittenState {
  window: RetainedWindow | null;
  /** Written chunks, oldest first, with the last offset each holds. */
  chunks: StoredChunk[];
  /** The last offset written to the store. */
  written: number;
  /** The record must be written even without new events (a new epoch). */
  dirty: boolean;
  /** This run has written the group's record (see `#plan`). */
  recordWritten: boolean;
  /** That record is an unused group's, which expires: it must be written again once used. */
  recordExpires: boolean;
  /**
   * When this run last wrote the group's record (`Date.now()`; 0: not known), so that it is
   * written again before it would expire before the chunks (`recordRenewedEveryMs`).
   */
  recordWrittenAt: number;
  /** Stored chunks that are not this stream's (found without a record): removed first. */
  stale: StoreKey[];
  /**
   * The store could not be read, so the group took a new epoch from offset 0 without knowing
   * what is stored: its old chunks are listed as stale before its first write. Written first,
   * they would be read back after a restart as this epoch's, under offsets it gives again.
   */
  storedUnknown: boolean;
}

/**
 * One group's part of a write round, applied to its state only once the round is written: the
 * chunks it adds and the oldest it removes, the stale keys it clears, whether it writes the
 * record (and whether that expires), and the offset it writes up to.
 */
interface PlannedWrite {
  state: WrittenState;
  offset: number;
  newChunks: PlannedChunk[];
  expiredChunks: number;
  stale: number;
  wasDirty: boolean;
  record: { expires: boolean; at: number } | undefined;
}

/** A chunk a round writes, with its place among the round's writes (after the clears). */
interface PlannedChunk extends StoredChunk {
  at: number;
}

/** The write rounds of one run of the in-process streams. */
export class WriteRounds {
  readonly #store: Store;
  readonly #run: string;
  readonly #delayMs: number;
  /** How long what a round writes outlives it in the store (the idle expiry). */
  readonly #idleExpiryMs: number;
  readonly #groups: () => Iterable<[string, WrittenState]>;
  readonly #afterRound: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<number> | null = null;
  /** When a write was first asked for while a round was under way (`performance.now()`). */
  #wantedAt: number | null = null;
  #stopped = false;
  /** A round wrote a stream's record, which names the run. */
  wroteRecord: boolean = false;
  #failing = false;
  /** How long each batch write to the store took. */
  readonly writeSeconds: Histogram = new Histogram();
  /** Write rounds that failed (each is tried again at the next). */
  writeFailures: number = 0;

  /**
   * Rounds that write `groups()` to `store` `delayMs` after a publish, their records naming
   * `run` and everything expiring `idleExpiryMs` after it is written; `afterRound` runs once
   * each round has ended (and no round iterates the groups).
   */
  constructor(
    store: Store,
    run: string,
    timing: { delayMs: number; idleExpiryMs: number },
    groups: () => Iterable<[string, WrittenState]>,
    afterRound: () => void = () => {},
  ) {
    this.#store = store;
    this.#run = run;
    this.#delayMs = timing.delayMs;
    this.#idleExpiryMs = timing.idleExpiryMs;
    this.#groups = groups;
    this.#afterRound = afterRound;
  }

  /** Writes what is unwritten `delayMs` from now, unless a round is due or under way. */
  schedule(): void {
    if (this.#stopped) return;
    // While a round writes, what asks now (another room's publish) is the next round's, due
    // `delayMs` from now still: counted from now, not from the end of the round under way.
    if (this.#round !== null) this.#wantedAt ??= performance.now();
    else this.#startIn(this.#delayMs);
  }

  #startIn(ms: number): void {
    if (this.#timer === undefined) this.#timer = setTimeout(() => void this.#writeRound(), ms);
  }

  /**
   * Writes every stream's unwritten events now; rejects when some could not be written (they
   * are tried again at the next round).
   */
  async flush(): Promise<void> {
    await this.#round;
    // After the round waited for, which may have asked for another: this one writes it now.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Its own round's outcome: what was published while it wrote is the next round's.
    const unwritten = await this.#writeRound();
    if (unwritten > 0) throw new Error(`${unwritten} stream(s) could not be written to the store`);
  }

  /** Schedules no more rounds (the streams closed, after their last flush). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // Resolves with how many groups it could not write (0 when all were).
  #writeRound(): Promise<number> {
    this.#timer = undefined;
    // Ended in a callback, which runs after `#round` holds the round even when the round had
    // nothing to write and so never waited: ended in its own body, it left a finished round in
    // `#round`, and no round was ever written again.
    if (this.#round !== null) return this.#round;
    const round = this.#write().catch((error) => {
      log.error("Streams: a write round failed", error); // a bug: it catches what it writes
      return { unwritten: 1, again: true };
    });
    return this.#round = round.then(({ unwritten, again }) => {
      this.#round = null;
      this.#afterRound();
      const wantedAt = this.#wantedAt;
      this.#wantedAt = null;
      if (wantedAt !== null && !this.#stopped) {
        this.#startIn(Math.max(0, this.#delayMs - (performance.now() - wantedAt)));
      } else if (again) this.schedule();
      return unwritten;
    });
  }

  // One round: how many groups it could not write, and whether some are left to write.
  async #write(): Promise<{ unwritten: number; again: boolean }> {
    const clears: StoreChange[] = [];
    const sets: StoreChange[] = [];
    const deletes: StoreChange[] = [];
    const planned: PlannedWrite[] = [];
    const listing: Promise<void>[] = [];
    for (const [group, state] of this.#groups()) {
      if (state.storedUnknown) listing.push(this.#findStale(group, state));
    }
    if (listing.length > 0) await Promise.all(listing);
    let unlisted = 0;
    for (const [group, state] of this.#groups()) {
      const window = state.window;
      if (window === null || (window.offset === state.written && !state.dirty)) continue;
      if (state.storedUnknown) { // its chunks could not be listed: not written before they are
        unlisted++;
        continue;
      }
      for (const key of state.stale) clears.push({ key, delete: true });
      planned.push(this.#plan(group, state, window, sets, deletes));
    }
    let failed = false;
    try {
      // Stale chunks go first, so a new chunk under the same key is not removed after it.
      const changes = [...clears, ...sets, ...deletes];
      const started = performance.now();
      if (changes.length > 0) await this.#store.writeMany(changes);
      if (changes.length > 0) this.writeSeconds.observe((performance.now() - started) / 1000);
      // The group's state changes only once written: a failed round is planned again, whole,
      // by the next one, and adds nothing it would keep for good.
      for (const { state, offset, record, newChunks, expiredChunks, stale } of planned) {
        state.stale.splice(0, stale);
        state.chunks.splice(0, expiredChunks);
        state.chunks.push(...newChunks.map(({ key, last }) => ({ key, last })));
        state.written = offset;
        state.recordWritten = true;
        if (record !== undefined) {
          state.recordExpires = record.expires;
          state.recordWrittenAt = record.at;
          this.wroteRecord = true;
        }
      }
      // Not while a group's chunks cannot be listed: that group is still not written.
      if (unlisted === 0) {
        if (this.#failing) log.info(`Streams: written again (${planned.length} group(s))`);
        this.#failing = false;
      }
    } catch (error) {
      failed = true;
      // Written in part (several commits): chunks written are not tracked as the stream's, so
      // they are removed at the next round that works (a new chunk under the key is set after).
      const written = error instanceof PartlyWrittenError ? error.written - clears.length : 0;
      for (const { state, newChunks } of planned) {
        for (const { key, at } of newChunks) {
          if (at < written && !state.stale.includes(key)) state.stale.push(key);
        }
      }
      // Once per outage, not every round: it is retried every round until it works.
      if (!this.#failing) {
        log.warn(`Streams of ${planned.length} group(s) not written; retrying`, error);
      }
      this.#failing = true;
      this.writeFailures++;
      for (const { state, wasDirty } of planned) if (wasDirty) state.dirty = true;
    }
    const again = unlisted > 0 ||
      planned.some(({ state }) => state.window!.offset !== state.written);
    return { unwritten: unlisted + (failed ? planned.length : 0), again };
  }

  // Lists what the store holds of a group it could not read, as stale: none of it is the
  // group's now, as it has written nothing yet (see `storedUnknown`). Tried again each round.
  async #findStale(group: string, state: WrittenState): Promise<void> {
    try {
      const stored = await this.#store.list(chunkPrefix(group));
      const known = new Set(state.stale.map((key) => JSON.stringify(key)));
      for (const { key } of stored) if (!known.has(JSON.stringify(key))) state.stale.push(key);
      state.storedUnknown = false;
    } catch (error) {
      if (!this.#failing) {
        log.warn(`Stream of "${group}" not written: its stored chunks cannot be listed`, error);
      }
      this.#failing = true;
    }
  }

  // Adds the group's new chunks to `sets`, the chunks now expired to `deletes`, and the
  // group's record to `sets` when it must change. A record is written once per run (it names
  // the run, which tells a crash from a clean stop), when the epoch is new, when no chunk is
  // left, and once `recordRenewedEveryMs` passed, so that it expires with the chunks;
  // otherwise the last chunk's key holds the latest offset, and a read takes the larger of the
  // two: half as many writes per round for a busy stream.
  // Nothing of the group's state changes until the round is written (see `PlannedWrite`).
  #plan(
    group: string,
    state: WrittenState,
    window: RetainedWindow,
    sets: StoreChange[],
    deletes: StoreChange[],
  ): PlannedWrite {
    const now = Date.now();
    const renewalDue = now - state.recordWrittenAt >= recordRenewedEveryMs(this.#idleExpiryMs);
    const recordNeeded = state.dirty || !state.recordWritten || state.recordExpires || renewalDue;
    // Cleared now, not once written: a new epoch taken while the round writes marks it again.
    const wasDirty = state.dirty;
    state.dirty = false;
    const newChunks: PlannedChunk[] = [];
    for (const { last, bytes } of window.chunksAfter(state.written, MAX_CHUNK_BYTES)) {
      const key = chunkKey(group, last);
      newChunks.push({ key, last, at: sets.length });
      sets.push({ key, value: bytes, expireInMs: this.#idleExpiryMs });
    }
    const chunks = [...state.chunks, ...newChunks];
    const first = window.firstOffset;
    let expiredChunks = 0;
    while (expiredChunks < chunks.length && chunks[expiredChunks].last < first) {
      deletes.push({ key: chunks[expiredChunks++].key, delete: true });
    }
    const stale = state.stale.length;
    const planned = { state, offset: window.offset, newChunks, expiredChunks, stale, wasDirty };
    if (!recordNeeded && expiredChunks < chunks.length) return { ...planned, record: undefined };
    const expires = window.offset === 0;
    const record = { epoch: window.epoch, offset: window.offset, run: this.#run };
    sets.push(recordChange(group, record, expires ? EMPTY_STREAM_KEPT_MS : this.#idleExpiryMs));
    return { ...planned, record: { expires, at: now } };
  }
}
