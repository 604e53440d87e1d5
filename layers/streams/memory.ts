/**
 * Retained group streams in this process (`LAYER=memory`): offsets are assigned here, the
 * window is kept in memory, and every stream is written to the store (Deno KV) in batches, in
 * a round that starts at most `writeDelayMs` (2 s) after an event was published (or as soon as
 * the round before ends, when it ends later: `_write_rounds.ts`), and all of it at a graceful
 * shutdown. A restart that finds the store as it was left keeps offsets, epoch and events.
 *
 * A crash loses what was not written yet; offsets after the last write would then be given
 * again, so a stream last written by a run that did not shut down gracefully gets a new
 * epoch when it is next opened (its retained events stay, for the last-N history). Each run
 * has an id; a stream's record names the run that opened it, written before that run gives
 * the stream any offset, and a graceful close marks the run clean. The record is written again
 * only when the epoch changes or no chunk is left: otherwise the last chunk's key holds the
 * latest offset.
 *
 * A group read but never published to (a room opened, nobody wrote in it) costs no write while
 * the run lasts; a graceful close writes its record so that its epoch outlives a restart, and
 * that record expires after `EMPTY_STREAM_KEPT_MS` (`contract.ts`) unless the group is used.
 * At most 10,000 (`MAX_UNUSED_GROUPS`) such groups are kept in memory, the least recently read
 * going first: rooms named without end cost no memory without end.
 *
 * How the streams lie in the store: `_store_layout.ts`; how one is read back from it (tried
 * again, then a new epoch), `_window_from_store.ts`; how the memory budget trims the windows,
 * `_memory_budget.ts`.
 */
import { type GroupLayer, type LayerEvent, validateEvent, validateGroupName } from "../layer.ts";
import type { Store } from "../../storage/store.ts";
import { frozenEventJson, holdsBytes } from "../event_json.ts";
import {
  DEFAULT_IDLE_EXPIRY_MS,
  DEFAULT_RETENTION,
  type GroupStreams,
  incomplete,
  newEpoch,
  type PublishOptions,
  sendStored,
  SINCE_TOO_LARGE,
  type SinceOptions,
  sinceVerdict,
  STREAM_BYTES_REFUSED,
  type StreamEvent,
  type StreamPosition,
  type StreamPublished,
  type StreamRead,
  type StreamRetention,
  undelivered,
  validateCount,
  validateIdleExpiry,
  validatePosition,
  validatePublish,
  validateRetention,
  withoutReserved,
} from "./contract.ts";
import type { RetainedWindow } from "./_window.ts";
import { trimGroupsToBudget } from "./_memory_budget.ts";
import { UnusedGroups, writeUnusedRecords } from "./_unused_groups.ts";
import { groupsToLetGo, type KeptState } from "./_kept_groups.ts";
import type { Histogram } from "../../telemetry/metrics.ts";
import { WriteRounds } from "./_write_rounds.ts";
import { chunkKey, markRunClean, MAX_CHUNK_BYTES } from "./_store_layout.ts";
import { loadWindowFromStore } from "./_window_from_store.ts";

export { chunkKey, MAX_CHUNK_BYTES };

/** How in-process streams keep their events. */
export interface MemoryStreamsOptions {
  /** Retention of each publish that names none (default 1,000 messages or 10 minutes). */
  retention?: StreamRetention;
  /**
   * Longest an event waits before the round that writes it to the store starts, unless the
   * round before is still writing then (default 2 s).
   */
  writeDelayMs?: number;
  /**
   * The most characters of JSON every stream's window together may hold (default
   * 256 MiB, `DEFAULT_STREAM_MEMORY`): past it, the oldest events of the largest streams go
   * first, whatever their retention, so that no number of rooms can take all the memory.
   */
  memoryBudget?: number;
  /** Groups read but never published to kept in memory (default 10,000, `MAX_UNUSED_GROUPS`). */
  unusedGroups?: number;
  /**
   * Groups kept in memory in all before quiet ones (everything written, not used lately) are let
   * go, the least recently used first (default 20,000, `MAX_KEPT_GROUPS`); one let go is read
   * again from the store on its next use, its epoch and offsets kept.
   */
  keptGroups?: number;
  /**
   * How long what is written to the store outlives its write, in ms (default 30 days,
   * `DEFAULT_IDLE_EXPIRY_MS`): a room left that long loses its stored history, and takes a new
   * epoch when it is next read from the store (see `_store_layout.ts`).
   */
  idleExpiryMs?: number;
}

/** Longest an event waits in memory before it is written to the store. */
export const STREAM_WRITE_DELAY_MS = 2000;
/** The default memory budget of all streams together: 256 Mi characters of JSON. */
export const DEFAULT_STREAM_MEMORY = 256 * 1024 * 1024;
/** Groups read but never published to whose state stays in memory, the last read ones. */
export const MAX_UNUSED_GROUPS = 10_000;
/** Groups whose state stays in memory before quiet ones are let go (rooms made without end). */
export const MAX_KEPT_GROUPS = 20_000;

interface GroupState extends KeptState {
  /** Publishes and reads made while the group loads, run in order once it has. */
  queue: ((window: RetainedWindow) => void)[];
}

/** What in-process streams publish through: a layer, or the sequencer's fan-out to Workers. */
export type StreamsLayer = Pick<GroupLayer, "groupSend" | "groupSendNow">;

/** {@linkcode GroupStreams} in this process, written to a {@linkcode Store} in batches. */
export class MemoryStreams implements GroupStreams {
  #layer: StreamsLayer;
  #store: Store;
  #retention: StreamRetention;
  #groups = new Map<string, GroupState>();
  /** Groups read but never published to (offset 0), the least recently read first. */
  #unused: UnusedGroups<GroupState>;
  #keptGroups: number;
  /** Uses of any group so far: a group's `used` is this count at its last use. */
  #uses = 0;
  #run = newEpoch();
  #memoryBudget: number;
  /** Characters held by every window: what the budget counts. */
  #characters = 0;
  #writes: WriteRounds;
  #idleExpiryMs: number;
  /** A record this run wrote outside the write rounds (a claim, an unused room's) names it. */
  #namedInStore = false;
  #closing: Promise<void> | null = null;

  /** Streams that publish on `layer` and keep their events in `store`. */
  constructor(layer: StreamsLayer, store: Store, options: MemoryStreamsOptions = {}) {
    this.#layer = layer;
    this.#store = store;
    this.#retention = options.retention ?? DEFAULT_RETENTION;
    this.#memoryBudget = options.memoryBudget ?? DEFAULT_STREAM_MEMORY;
    this.#unused = new UnusedGroups(options.unusedGroups ?? MAX_UNUSED_GROUPS);
    this.#keptGroups = options.keptGroups ?? MAX_KEPT_GROUPS;
    const delayMs = options.writeDelayMs ?? STREAM_WRITE_DELAY_MS;
    this.#idleExpiryMs = validateIdleExpiry(options.idleExpiryMs ?? DEFAULT_IDLE_EXPIRY_MS);
    this.#writes = new WriteRounds(
      store,
      this.#run,
      { delayMs, idleExpiryMs: this.#idleExpiryMs },
      () => this.#groups,
      () => this.#forgetQuietGroups(),
    );
  }

  /** How long each batch write to the store took. */
  get writeSeconds(): Histogram {
    return this.#writes.writeSeconds;
  }

  /** Write rounds that failed (each is tried again at the next). */
  get writeFailures(): number {
    return this.#writes.writeFailures;
  }

  /** Characters of JSON every window holds together (see `memoryBudget`). */
  get retainedCharacters(): number {
    return this.#characters;
  }

  publish(group: string, event: LayerEvent, options?: PublishOptions): Promise<StreamPublished> {
    if (this.#closing !== null) return Promise.reject(new Error("Streams are closed"));
    // A group held here had its name checked at its first use (a publish or a read): a regular
    // expression per message saved.
    const known = this.#groups.get(group);
    try {
      // Before the event takes an offset: the layer's own check would come after it.
      if (known === undefined) validatePublish(group, event, options);
      else {
        validateEvent(event);
        validateRetention(options?.retention);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const state = known === undefined ? this.#state(group) : this.#used(group, known);
    // Each publish's own, as in every implementation: not the last one a publish gave.
    const retention = options?.retention ?? this.#retention;
    if (state.window !== null) return this.#append(group, state.window, event, retention);
    return new Promise((resolve, reject) => {
      // Runs from the load, which must go on to the next job whatever this one does.
      state.queue.push((window) => {
        try {
          this.#append(group, window, event, retention).then(resolve, reject);
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  async since(
    group: string,
    position: StreamPosition,
    options: SinceOptions = {},
  ): Promise<StreamRead> {
    validateGroupName(group);
    validatePosition(position);
    const window = await this.#window(group);
    // Answered before any event is parsed: a read that cannot be served costs nothing to refuse
    // (a reconnect with a stale epoch, or from far behind in a room of long messages).
    const { offset } = position;
    const reason = sinceVerdict(position, window, window.firstOffsetAfter(offset)) ??
      (options.maxBytes !== undefined && window.holdsMoreAfter(offset, options.maxBytes)
        ? SINCE_TOO_LARGE
        : null);
    if (reason !== null) return incomplete(window.epoch, window.offset, reason);
    return {
      epoch: window.epoch,
      offset: window.offset,
      complete: true,
      events: window.after(offset, options.pageBytes),
    };
  }

  async latest(group: string, count: number): Promise<StreamRead> {
    validateGroupName(group);
    validateCount(count);
    const window = await this.#window(group);
    return {
      epoch: window.epoch,
      offset: window.offset,
      complete: true,
      events: window.last(count),
    };
  }

  /**
   * Writes every stream's unwritten events now; rejects when some could not be written (they
   * are tried again at the next round).
   */
  flush(): Promise<void> {
    return this.#writes.flush();
  }

  /**
   * Writes what is unwritten and records a clean shutdown, so the next run keeps every epoch.
   * When the writes fail, it rejects and records nothing: the next run gives those streams a
   * new epoch, rather than hand out again offsets that were given before.
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      // Loads under way finish first, so what they queue is written too.
      await Promise.all([...this.#groups.keys()].map((group) => this.#window(group)));
      const failure = await this.flush().then(() => null, (error: Error) => error);
      this.#writes.stop();
      if (await writeUnusedRecords(this.#store, this.#unused, this.#run)) this.#namedInStore = true;
      if (failure !== null) {
        throw new Error(`Streams: ${failure.message}; the next start gives them a new epoch`);
      }
      // Only a record in the store that names this run reads the mark: a run that wrote none
      // (an idle one) leaves none, so restarts do not add a mark each for good.
      if (!this.#namedInStore && !this.#writes.wroteRecord) return;
      // Not recorded, the stop is no clean one for the next run either: it says so.
      await markRunClean(this.#store, this.#run).catch((error) => {
        throw new Error(
          `Streams: the clean shutdown was not recorded (${error?.message ?? error}); the next ` +
            "start gives every stream of this run a new epoch",
          { cause: error },
        );
      });
    })();
  }

  #append(
    group: string,
    window: RetainedWindow,
    event: LayerEvent,
    retention: StreamRetention,
  ): Promise<StreamPublished> {
    const offset = window.offset + 1;
    const epoch = window.epoch;
    if (offset === 1) this.#unused.used(group);
    // The spread first, then the two fields: V8 copies a spread that opens an object literal on
    // its fast path, and one that follows other fields several times slower.
    const streamed = { ...withoutReserved(event) } as StreamEvent;
    streamed.offset = offset;
    streamed.epoch = epoch;
    let text: string;
    try {
      // Frozen now, as the layer would: its JSON, made once here, is also every member's frame.
      text = frozenEventJson(streamed);
      // Frozen now: whether bytes are inside is known without another look.
      if (holdsBytes(streamed)) return Promise.reject(new TypeError(STREAM_BYTES_REFUSED));
    } catch (error) {
      // A BigInt or a cycle inside: refused before it takes its offset, as every layer refuses
      // it, and as a rejection: this runs from a load's queue too, where a throw ends the process.
      return Promise.reject(
        new TypeError(`The event has no JSON text: ${(error as Error).message}`),
      );
    }
    const now = Date.now();
    const before = window.characters;
    window.append(streamed, now, text);
    window.trim(retention, now);
    this.#characters += window.characters - before;
    if (this.#characters > this.#memoryBudget) this.#trimToBudget();
    this.#writes.schedule();
    const layer = this.#layer;
    if (layer.groupSendNow === undefined) return sendStored(layer, group, streamed);
    // Every member is in this process: delivered before this returns, with no promise between.
    try {
      return Promise.resolve({ ...layer.groupSendNow(group, streamed), offset, epoch });
    } catch (error) {
      return Promise.reject(undelivered(group, offset, error));
    }
  }

  #state(group: string): GroupState {
    let state = this.#groups.get(group);
    if (state === undefined) {
      state = {
        window: null,
        queue: [],
        chunks: [],
        written: 0,
        dirty: false,
        recordWritten: false,
        recordExpires: false,
        recordWrittenAt: 0,
        stale: [],
        storedUnknown: false,
        used: ++this.#uses,
      };
      this.#groups.set(group, state);
      void this.#load(group, state);
      return state;
    }
    return this.#used(group, state);
  }

  // Marks a group held here as used now.
  #used(group: string, state: GroupState): GroupState {
    state.used = ++this.#uses;
    if (state.window !== null && state.window.offset === 0) this.#unused.readAgain(group, state);
    return state;
  }

  // After a write round: beyond the bound, rooms written in and gone quiet are let go
  // (`_kept_groups.ts`), and read again from the store on their next use.
  #forgetQuietGroups(): void {
    if (this.#closing !== null) return;
    for (const [group, state] of groupsToLetGo(this.#groups, this.#keptGroups)) {
      this.#groups.delete(group);
      this.#characters -= state.window.characters;
    }
  }

  #window(group: string): Promise<RetainedWindow> {
    const state = this.#state(group);
    if (state.window !== null) return Promise.resolve(state.window);
    return new Promise((resolve) => state.queue.push(resolve));
  }

  async #load(group: string, state: GroupState): Promise<void> {
    const from = { store: this.#store, run: this.#run, idleExpiryMs: this.#idleExpiryMs };
    const read = await loadWindowFromStore(from, group, state);
    if (read.claimed) this.#namedInStore = true;
    if (read.writeSoon) this.#writes.schedule();
    const window = read.window;
    this.#characters += window.characters;
    // Queued publishes and reads run in their order before any later one.
    for (const job of state.queue) job(window);
    state.queue = [];
    state.window = window;
    if (window.offset === 0) {
      // Beyond the bound: forgotten (a record written stays in the store, read again on use).
      for (const [name, unused] of this.#unused.read(group, state)) {
        const quiet = unused.queue.length === 0 && !unused.dirty && unused.stale.length === 0;
        if (quiet && this.#groups.get(name) === unused) this.#groups.delete(name);
      }
    }
    if (this.#characters > this.#memoryBudget) this.#trimToBudget();
  }

  // Over the budget: see `_memory_budget.ts`. Runs once per tenth of the budget.
  #trimToBudget(): void {
    this.#characters -= trimGroupsToBudget(
      this.#groups.values(),
      this.#characters,
      this.#memoryBudget,
    );
  }
}
