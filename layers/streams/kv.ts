/**
 * Retained group streams in a shared Deno KV (`LAYER=broadcast`, which `--workers N` uses):
 * the Workers agree on offsets through the KV file they share.
 *
 * A commit is atomic: it checks the group's record (`{epoch, offset}`) is the one this Worker
 * last saw, writes the next offsets into it, and writes the events under those offsets, so an
 * offset is never given twice and an event is readable as soon as it has its offset. A Worker
 * remembers the record it last wrote (of its 10,000 groups last used), so while it is the only
 * publisher of a group the commit needs no read first; when another Worker published meanwhile,
 * the check fails and the Worker reads the record and tries again.
 *
 * One Worker's commits to a group are made one at a time. A publish called while a commit is
 * under way waits for it, with the others called meanwhile, and they go in the next commit
 * together, in call order (a group commit, as databases make them): a quiet group's publish is
 * committed at once, a busy group's cost one commit per round trip of the KV file rather than
 * one each, and the fewer commits there are, the fewer collide with another Worker's. Each event
 * is durable once its publish resolves.
 *
 * The event then goes to the group through the layer (BroadcastChannel). Two Workers' events
 * can reach a third out of offset order (each sends when its own commit returns): the chat
 * consumer reads a gap it sees from the stream, and skips what it already sent.
 *
 * Keys: `[prefix, "stream_meta", group]` = `{epoch, offset}`; `[prefix, "stream", group,
 * offset]` = `{t, e}` (time in ms, the event's JSON), each expiring `idleExpiryMs` after its
 * commit. Trimming runs every 32 events.
 */
import { type GroupLayer, type LayerEvent, validateGroupName } from "../layer.ts";
import { eventJson, freezeEvent } from "../event_json.ts";
import { openKv, retryWhileLocked } from "../../storage/kv_retry.ts";
import { log } from "../../telemetry/log.ts";
import { Histogram } from "../../telemetry/metrics.ts";
import {
  DEFAULT_IDLE_EXPIRY_MS,
  DEFAULT_RETENTION,
  EMPTY_STREAM_KEPT_MS,
  type GroupStreams,
  incomplete,
  newEpoch,
  type PublishOptions,
  retainedAtMost,
  sendStored,
  sinceVerdict,
  type StreamEvent,
  type StreamPosition,
  type StreamPublished,
  type StreamRead,
  type StreamRetention,
  validateCount,
  validateIdleExpiry,
  validatePosition,
  validatePublish,
  validateStreamedData,
  withoutReserved,
} from "./contract.ts";

/** How KV streams find their file and their layer. */
export interface KvStreamsOptions {
  /** The KV file the Workers share; omitted: Deno's default (Deno Deploy's KV). */
  kvPath?: string;
  /** Starts every key, so several apps can share one KV. */
  prefix: string;
  /** The layer the groups' members are on. */
  layer: GroupLayer;
  /** Retention of groups whose publishers name none (default 1,000 messages or 10 minutes). */
  retention?: StreamRetention;
  /**
   * Publishes one commit may take (default 64, at most 64); 1 commits each on its own, as
   * before group commits (the bench's baseline).
   */
  commitBatch?: number;
  /** Groups whose record a Worker remembers (default 10,000, `MAX_REMEMBERED_GROUPS`). */
  rememberedGroups?: number;
  /** How long each stored event, and the record, outlive their commit (`DEFAULT_IDLE_EXPIRY_MS`). */
  idleExpiryMs?: number;
}

interface Meta {
  epoch: string;
  offset: number;
  /** A record no publish wrote yet (a room only read): when it was last given its day. */
  readAt?: number;
}

interface Seen extends Meta {
  versionstamp: string | null;
}

interface Stored {
  t: number;
  e: string;
}

// How often a room only read is given its day again: a write an hour at most, not one a read.
const UNUSED_RECORD_RENEWED_MS = 60 * 60 * 1000;
const TRIM_EVERY = 32;
const TRIM_BATCH = 100;
/** Publishes one commit takes at most: Deno KV allows 1,000 mutations and 800 KiB per commit. */
const COMMIT_EVENTS = 64;
const COMMIT_BYTES = 512 * 1024;
/** The largest event a publish takes as JSON: a KV value's 64 KiB, less time, offset, epoch. */
export const MAX_EVENT_BYTES = 64 * 1024 - 256;
/** Why a read is incomplete when events it should hold were trimmed while it read them. */
const EXPIRED_WHILE_READ = "messages after the position expired while they were read";
/** Publishes that may wait for a group's commit; more are refused rather than queued. */
export const MAX_WAITING_PUBLISHES = 10_000;

/**
 * Groups whose record a Worker remembers, the least recently used going first: every room name
 * anyone opened was otherwise remembered for good. A record is only a hint for the next commit:
 * one forgotten is read again first, and one remembered stale fails the commit's check.
 */
export const MAX_REMEMBERED_GROUPS = 10_000;

/** A publish waiting for its group's next commit. */
interface Waiting {
  event: LayerEvent;
  retention: StreamRetention;
  resolve: (streamed: StreamEvent) => void;
  reject: (error: unknown) => void;
}

/** {@linkcode GroupStreams} in a Deno KV shared by Workers; open with {@linkcode KvStreams.open}. */
export class KvStreams implements GroupStreams {
  #kv: Deno.Kv;
  #options: KvStreamsOptions;
  #retention: StreamRetention;
  #expiry: { expireIn: number }; // of what a commit writes (`idleExpiryMs`)
  #commitBatch: number;
  /** By group: the record this Worker last wrote or read, the least recently used first. */
  #seen = new Map<string, Seen>();
  #rememberedGroups: number;
  /** By group: the publishes waiting for its next commit; present while a commit is under way. */
  #waiting = new Map<string, Waiting[]>();
  /** The groups' commit loops, so that closing waits for them. */
  #committing = new Set<Promise<void>>();
  #closing: Promise<void> | null = null;
  /** How long each commit took (one or more publishes). */
  readonly writeSeconds: Histogram = new Histogram();

  private constructor(kv: Deno.Kv, options: KvStreamsOptions) {
    this.#kv = kv;
    this.#options = options;
    this.#retention = options.retention ?? DEFAULT_RETENTION;
    this.#expiry = { expireIn: options.idleExpiryMs ?? DEFAULT_IDLE_EXPIRY_MS };
    this.#commitBatch = Math.max(1, Math.min(COMMIT_EVENTS, options.commitBatch ?? COMMIT_EVENTS));
    this.#rememberedGroups = Math.max(1, options.rememberedGroups ?? MAX_REMEMBERED_GROUPS);
  }

  /** How many groups' records this Worker remembers (at most `rememberedGroups`). */
  get remembered(): number {
    return this.#seen.size;
  }

  /** Opens the KV file. */
  static async open(options: KvStreamsOptions): Promise<KvStreams> {
    validateIdleExpiry(options.idleExpiryMs ?? DEFAULT_IDLE_EXPIRY_MS);
    return new KvStreams(await openKv(options.kvPath), options);
  }

  publish(group: string, event: LayerEvent, options?: PublishOptions): Promise<StreamPublished> {
    if (this.#closing !== null) return Promise.reject(new Error("Streams are closed"));
    try {
      validatePublish(group, event, options); // before the event takes an offset
      validateStreamedData(event);
      const bytes = storedBytes(eventJson(event) ?? "");
      if (bytes > MAX_EVENT_BYTES) {
        throw new TypeError(
          `The event is too large to keep in Deno KV: ${bytes} bytes, at most ${MAX_EVENT_BYTES}`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const retention = options?.retention ?? this.#retention;
    const { promise: committed, resolve, reject } = Promise.withResolvers<StreamEvent>();
    const waiting = this.#waiting.get(group);
    if (waiting === undefined) {
      this.#waiting.set(group, [{ event, retention, resolve, reject }]);
      const loop = this.#commitWhileWaiting(group);
      this.#committing.add(loop);
      void loop.finally(() => this.#committing.delete(loop));
    } else if (waiting.length >= MAX_WAITING_PUBLISHES) {
      return Promise.reject(new Error(`More than ${MAX_WAITING_PUBLISHES} publishes wait`));
    } else waiting.push({ event, retention, resolve, reject });
    // Resolved in offset order, so the members get the events in that order too.
    return committed.then((streamed) => sendStored(this.#options.layer, group, streamed));
  }

  async since(group: string, position: StreamPosition): Promise<StreamRead> {
    validateGroupName(group);
    validatePosition(position);
    const meta = await this.#meta(group);
    // Nothing is listed for a position of another epoch.
    const events = position.offset >= meta.offset || position.epoch !== meta.epoch
      ? []
      : await this.#list(group, position.offset + 1, meta.offset);
    // A list is read in pages, and a trim between two of them (another Worker's publishes) can
    // take events after the first one read: every offset up to the record's must be there.
    const whole = events.length === Math.max(0, meta.offset - position.offset);
    const reason = sinceVerdict(position, meta, events[0]?.offset) ??
      (whole || position.epoch !== meta.epoch ? null : EXPIRED_WHILE_READ);
    if (reason !== null) return incomplete(meta.epoch, meta.offset, reason);
    return { epoch: meta.epoch, offset: meta.offset, complete: true, events };
  }

  async latest(group: string, count: number): Promise<StreamRead> {
    validateGroupName(group);
    validateCount(count);
    const meta = await this.#meta(group);
    const events = await this.#list(group, 1, meta.offset, Math.max(0, Math.floor(count)));
    return { epoch: meta.epoch, offset: meta.offset, complete: true, events };
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      await Promise.allSettled([...this.#committing]);
      this.#kv.close();
    })();
  }

  // Commits what waits for the group, a batch at a time, until nothing does.
  async #commitWhileWaiting(group: string): Promise<void> {
    const waiting = this.#waiting.get(group)!;
    while (waiting.length > 0) {
      const batch = waiting.splice(0, this.#commitBatch);
      try {
        const streamed = await this.#commit(group, batch);
        // What did not fit in the commit's bytes goes first in the next one.
        waiting.unshift(...batch.splice(streamed.length));
        batch.forEach((publish, i) => publish.resolve(streamed[i]));
      } catch (error) {
        for (const publish of batch) publish.reject(error);
      }
    }
    this.#waiting.delete(group);
  }

  /** Commits the publishes of `batch` that fit in one commit (at least the first), in order. */
  async #commit(group: string, batch: Waiting[]): Promise<StreamEvent[]> {
    const rests = batch.map((publish) => withoutReserved(publish.event));
    const metaKey = this.#metaKey(group);
    let seen = this.#seen.get(group) ?? await this.#read(group);
    for (;;) {
      const epoch = seen.versionstamp === null ? newEpoch() : seen.epoch;
      const first = seen.versionstamp === null ? 1 : seen.offset + 1;
      // Frozen before their JSON is made: the layer's delivery reuses the same text.
      const streamed = rests.map((rest, i) =>
        freezeEvent({ offset: first + i, epoch, ...rest } as StreamEvent)
      );
      const now = Date.now();
      const stored = streamed.map((event): Stored => ({ t: now, e: eventJson(event) }));
      // Measured on the texts the commit writes anyway; what does not fit waits for the next
      // commit, and a retry after a lost check keeps the shorter batch.
      const fits = fitting(stored);
      for (const list of [rests, streamed, stored]) list.splice(fits);
      const last = first + fits - 1;
      const started = performance.now();
      const result = await retryWhileLocked(() => {
        const commit = this.#kv.atomic()
          .check({ key: metaKey, versionstamp: seen.versionstamp })
          .set(metaKey, { epoch, offset: last } satisfies Meta, this.#expiry);
        stored.forEach((entry, i) =>
          commit.set(this.#entryKey(group, first + i), entry, this.#expiry)
        );
        return commit.commit();
      });
      this.writeSeconds.observe((performance.now() - started) / 1000);
      if (result.ok) {
        this.#remember(group, { epoch, offset: last, versionstamp: result.versionstamp });
        // Before the group's next commit, which waits; reads need not.
        if (Math.floor(last / TRIM_EVERY) > Math.floor((first - 1) / TRIM_EVERY)) {
          await this.#trimQuietly(group, last, batch[rests.length - 1].retention);
        }
        return streamed;
      }
      seen = await this.#read(group); // another Worker published meanwhile
    }
  }

  async #read(group: string): Promise<Seen> {
    const entry = await this.#kv.get<Meta>(this.#metaKey(group));
    const seen = entry.value === null
      ? { epoch: "", offset: 0, versionstamp: null }
      : { ...entry.value, versionstamp: entry.versionstamp };
    this.#remember(group, seen);
    return seen;
  }

  #remember(group: string, seen: Seen): void {
    this.#seen.delete(group); // so that it goes last
    this.#seen.set(group, seen);
    if (this.#seen.size > this.#rememberedGroups) {
      this.#seen.delete(this.#seen.keys().next().value!);
    }
  }

  /**
   * The group's record, made (with a new epoch) when it has none. A record no publish wrote
   * (a room opened, never written in) is kept a day from its last read, as the other streams
   * keep theirs: anyone may open a room of any name, and such a record must not stay for good.
   * It is given its day again at most once an hour; a publish's record expires with its
   * last events, `idleExpiryMs` after their commit.
   */
  async #meta(group: string): Promise<Meta> {
    const key = this.#metaKey(group);
    for (;;) {
      const seen = await this.#read(group);
      const now = Date.now();
      if (seen.versionstamp !== null) {
        if (seen.offset > 0 || now - (seen.readAt ?? 0) < UNUSED_RECORD_RENEWED_MS) return seen;
      }
      const epoch = seen.versionstamp === null ? newEpoch() : seen.epoch;
      const meta: Meta = { epoch, offset: 0, readAt: now };
      const result = await retryWhileLocked(() =>
        this.#kv.atomic().check({ key, versionstamp: seen.versionstamp })
          .set(key, meta, { expireIn: EMPTY_STREAM_KEPT_MS }).commit()
      );
      if (result.ok) {
        this.#remember(group, { ...meta, versionstamp: result.versionstamp });
        return meta;
      }
    }
  }

  async #list(group: string, from: number, to: number, last?: number): Promise<StreamEvent[]> {
    if (to < from || last === 0) return [];
    const entries = this.#kv.list<Stored>({
      start: this.#entryKey(group, from),
      end: this.#entryKey(group, to + 1),
    }, last === undefined ? {} : { reverse: true, limit: last });
    const events: StreamEvent[] = [];
    for await (const entry of entries) events.push(JSON.parse(entry.value.e));
    return last === undefined ? events : events.reverse();
  }

  #trimQuietly(group: string, offset: number, retention: StreamRetention): Promise<void> {
    return this.#trim(group, offset, retention).catch((error) =>
      log.debug(`Stream of "${group}" not trimmed: ${error}`)
    );
  }

  // Removes entries beyond the message window that are older than the age window, and any
  // beyond the hard bound.
  async #trim(group: string, offset: number, retention: StreamRetention): Promise<void> {
    const keepFrom = offset - retention.messages + 1;
    if (keepFrom <= 1) return;
    const hardFrom = offset - retainedAtMost(retention) + 1;
    const oldest = Date.now() - retention.seconds * 1000;
    const expired: Deno.KvKey[] = [];
    const entries = this.#kv.list<Stored>({
      start: this.#entryKey(group, 0),
      end: this.#entryKey(group, keepFrom),
    }, { limit: 4 * TRIM_EVERY });
    for await (const entry of entries) {
      const entryOffset = entry.key.at(-1) as number;
      if (entry.value.t > oldest && entryOffset >= hardFrom) break;
      expired.push(entry.key);
    }
    for (let start = 0; start < expired.length; start += TRIM_BATCH) {
      const batch = this.#kv.atomic();
      for (const key of expired.slice(start, start + TRIM_BATCH)) batch.delete(key);
      await retryWhileLocked(() => batch.commit());
    }
  }

  #metaKey(group: string): Deno.KvKey {
    return [this.#options.prefix, "stream_meta", group];
  }

  #entryKey(group: string, offset: number): Deno.KvKey {
    return [this.#options.prefix, "stream", group, offset];
  }
}

// How many of `stored`, from the first, one commit takes: the first always (its size was
// checked at its publish), then as many as fit beside it.
function fitting(stored: Stored[]): number {
  let bytes = 0;
  for (let i = 1; i < stored.length; i++) {
    bytes += storedBytes(stored[i].e);
    if (bytes > COMMIT_BYTES) return i;
  }
  return stored.length;
}

// Any character beyond Latin-1: V8, which serialises Deno KV's values, then stores the whole
// string in two bytes a character.
const BEYOND_LATIN1 = /[\u0100-\uffff]/;

// The bytes Deno KV counts for `json`: one a character, or two when one is beyond Latin-1.
function storedBytes(json: string): number {
  return BEYOND_LATIN1.test(json) ? 2 * json.length : json.length;
}
