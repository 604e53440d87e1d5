import type { Store, StoreChange, StoreKey } from "./store.ts";
import { log } from "../server/log.ts";
import { eventJson } from "../layers/event_json.ts";
import { type JsonChunk, JsonChunks, parseJsonChunk } from "./_json_chunks.ts";

/** One chat message as it goes over the wire and into history. */
export interface ChatMessage {
  /** The event type it travels under on the group layer. */
  type: "chat.message";
  /** Sorts by time; clients use it to drop duplicates after a reconnect. */
  id: string;
  /** The room's name, decoded, as in its URL. */
  room: string;
  /** The text as the author sent it; escaped only where it is shown. */
  message: string;
  /** The author's username, or a fixed name for anonymous authors. */
  author: string;
  /** ISO 8601, UTC. */
  time: string;
}

/** How many messages a room keeps and shows on entry. */
export const HISTORY_SIZE = 50;
/**
 * Longest a message waits before it is written (unless `flush` is called). Every round costs
 * Deno KV a transaction and its fsync whatever its size: at one second, the rounds' bursts of
 * disk work showed in the rooms benchmark's tail latency; at two they no longer did.
 */
export const HISTORY_WRITE_DELAY_MS = 2000;
/** Messages waiting to be written before the oldest waiting ones are given up. */
export const MAX_PENDING_WRITES = 10_000;
// How long one store listing of a room serves further sockets entering it.
const LISTING_TTL_MS = 1000;
// Rooms whose newest keys are remembered; a forgotten room is trimmed by a listing again.
const MAX_TRACKED_ROOMS = 1000;
// A store value must stay under 64 KiB (Deno KV): chunks are closed at 48 KiB, and the longest
// message's JSON (10,000 characters, six bytes each when escaped) still fits one value alone.
const MAX_BATCH_BYTES = 48 * 1024;

/** Messages written under one key: `key`'s last part is the newest message's id. */
interface Batch {
  key: StoreKey;
  ids: string[];
}

/**
 * The last messages of each room, kept in the store so they survive restarts.
 *
 * Writes are batched: what a room receives within `writeDelayMs` goes into one value, keyed by
 * its newest message's id, and every room's values and trims of a round go to the store in one
 * `writeMany`, so history costs one store operation per interval however busy the rooms are,
 * and a slow store never delays the broadcast. `recent` includes messages not yet
 * written; `flush` writes them now (the chat consumer calls it on disconnect, so a shutdown
 * writes everything before the store closes). Trimming deletes a batch once `size` newer
 * messages are known to be written; a key is never deleted before that, so processes sharing a
 * store never delete each other's recent messages.
 */
export class ChatHistory {
  #store: Store;
  #size: number;
  #delayMs: number;
  // Kept as the UTF-8 of their JSON (the text the wire frame already made), outside the
  // JavaScript heap, where minor GCs need not copy it (see `JsonChunks`).
  #pending = new Map<string, JsonChunks>();
  #pendingCount = 0;
  /** The chunks of the round being written, for `recent` meanwhile. */
  #writing = new Map<string, JsonChunk[]>();
  #round: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Per room, the written batches this process knows of, oldest first; `listed` once seeded. */
  #known = new Map<string, { batches: Batch[]; listed: boolean }>();
  #givenUp = 0;
  /** Recent store listings per room, shared by sockets entering it (see `#storedRecent`). */
  #listings = new Map<string, { at: number; messages: Promise<ChatMessage[]> }>();

  /** Keeps `size` messages per room in `store`, writing at most every `writeDelayMs`. */
  constructor(store: Store, options: { size?: number; writeDelayMs?: number } = {}) {
    this.#store = store;
    this.#size = options.size ?? HISTORY_SIZE;
    this.#delayMs = options.writeDelayMs ?? HISTORY_WRITE_DELAY_MS;
  }

  /**
   * Queues a message for its room's history. `json` is its JSON text when the caller already
   * has it (the frame the room was sent): made once, it need not be made again here.
   */
  append(message: ChatMessage, json: string = eventJson(message)): void {
    if (this.#pendingCount >= MAX_PENDING_WRITES) this.#giveUpOldest();
    let chunks = this.#pending.get(message.room);
    if (chunks === undefined) {
      this.#pending.set(message.room, chunks = new JsonChunks(MAX_BATCH_BYTES));
    }
    chunks.add(message.id, json);
    this.#pendingCount++;
    if (this.#timer === undefined && this.#round === null) {
      this.#timer = setTimeout(() => void this.#writeRound(), this.#delayMs);
    }
  }

  /** The room's last messages, oldest first, including those not written yet. */
  async recent(room: string): Promise<ChatMessage[]> {
    // Taken before listing: a message written while the listing runs is in one or the other.
    const unwritten = [
      ...(this.#writing.get(room) ?? []).flatMap((chunk) =>
        parseJsonChunk<ChatMessage>(chunk.bytes)
      ),
      ...(this.#pending.get(room)?.last<ChatMessage>(this.#size) ?? []),
    ];
    const stored = await this.#storedRecent(room);
    const unique = new Map<string, ChatMessage>();
    for (const message of stored) unique.set(message.id, message);
    for (const message of unwritten) unique.set(message.id, message);
    return [...unique.values()].sort(byId).slice(-this.#size);
  }

  // Sockets enter a room in bursts (a page load, a reconnect after a restart): one store
  // listing serves every entry to that room for a moment instead of one listing each. A round
  // that writes the room drops its listing once written, so what this
  // process wrote is always seen; what other processes wrote is seen within LISTING_TTL_MS,
  // which their own write batching already delays as long.
  #storedRecent(room: string): Promise<ChatMessage[]> {
    const cached = this.#listings.get(room);
    if (cached !== undefined && performance.now() - cached.at < LISTING_TTL_MS) {
      return cached.messages;
    }
    const messages = this.#store.list(["chat_history", room], {
      limit: this.#size,
      reverse: true,
    }).then((entries) => entries.flatMap((entry) => storedMessages(entry.value)));
    this.#listings.delete(room); // re-inserted: the Map's order is recency, for eviction
    this.#listings.set(room, { at: performance.now(), messages });
    if (this.#listings.size > MAX_TRACKED_ROOMS) {
      this.#listings.delete(this.#listings.keys().next().value!);
    }
    messages.catch(() => this.#listings.delete(room));
    return messages;
  }

  /** Writes every queued message now; resolves when they are in the store. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#round !== null || this.#pendingCount > 0) {
      await (this.#round ?? this.#writeRound());
    }
  }

  /** Writes what waits and stops the write timer: what an app does with it at shutdown. */
  close(): Promise<void> {
    return this.flush();
  }

  #writeRound(): Promise<void> {
    this.#timer = undefined;
    return this.#round ??= (async () => {
      this.#writing = new Map([...this.#pending].map(([room, chunks]) => [room, chunks.take()]));
      this.#pending = new Map();
      this.#pendingCount = 0;
      try {
        // Every room's new batches first, then the trims: one store operation per round.
        const sets: StoreChange[] = [];
        const deletes: StoreChange[] = [];
        for (const [room, messages] of this.#writing) {
          await this.#planRoom(room, messages, sets, deletes);
        }
        await this.#store.writeMany([...sets, ...deletes]);
        // A listing taken before this write lacks it: its callers had these messages as
        // unwritten; later callers must list again.
        for (const room of this.#writing.keys()) this.#listings.delete(room);
      } catch (error) {
        log.warn(`History of ${this.#writing.size} room(s) not written`, error);
      }
      this.#writing = new Map();
      this.#round = null;
      if (this.#pendingCount > 0 && this.#timer === undefined) {
        this.#timer = setTimeout(() => void this.#writeRound(), this.#delayMs);
      }
    })();
  }

  // Adds the room's new batches to `sets` and the batches they make old to `deletes`.
  async #planRoom(
    room: string,
    chunks: JsonChunk[],
    sets: StoreChange[],
    deletes: StoreChange[],
  ): Promise<void> {
    let known = this.#known.get(room);
    this.#known.delete(room); // re-inserted below: the Map's order is recency of writes
    known ??= { batches: [], listed: false };
    const fresh: Batch[] = [];
    for (const chunk of chunks) {
      const key = ["chat_history", room, chunk.ids[chunk.ids.length - 1]];
      sets.push({ key, value: chunk.bytes });
      fresh.push({ key, ids: chunk.ids });
    }
    for (const batch of fresh) insertSorted(known.batches, batch);
    if (!known.listed && countIds(known.batches) > this.#size) {
      // What other processes (or earlier runs) wrote, plus this round's not yet written.
      const listed = await this.#listBatches(room);
      for (const batch of fresh) insertSorted(listed, batch);
      known = { batches: listed, listed: true };
    }
    for (const expired of this.#expired(known.batches)) {
      deletes.push({ key: expired.key, delete: true });
    }
    this.#known.set(room, known);
    if (this.#known.size > MAX_TRACKED_ROOMS) this.#known.delete(this.#known.keys().next().value!);
  }

  // Removes from `batches` and returns those with at least `size` newer messages after them.
  #expired(batches: Batch[]): Batch[] {
    const expired: Batch[] = [];
    while (batches.length > 1) {
      const last = batches[0].key[2];
      let newer = 0;
      for (let i = 1; i < batches.length; i++) {
        for (const id of batches[i].ids) if (id > last) newer++;
      }
      if (newer < this.#size) break;
      expired.push(batches.shift()!);
    }
    return expired;
  }

  async #listBatches(room: string): Promise<Batch[]> {
    const entries = await this.#store.list(["chat_history", room]);
    return entries.map((entry) => ({
      key: entry.key,
      ids: storedMessages(entry.value).map((m) => m.id),
    }));
  }

  #giveUpOldest(): void {
    const [room, chunks] = this.#pending.entries().next().value!;
    const dropped = chunks.dropOldest();
    if (chunks.count === 0) this.#pending.delete(room);
    this.#pendingCount -= dropped;
    const before = this.#givenUp;
    this.#givenUp += dropped;
    // The first time, then once per thousand more.
    if (before === 0 || Math.floor(this.#givenUp / 1000) > Math.floor(before / 1000)) {
      log.warn(`Chat history is behind: ${this.#givenUp} message(s) not written`);
    }
  }
}

/**
 * The messages of one stored history value: the UTF-8 bytes of a JSON array, as
 * {@linkcode ChatHistory} writes it. Any other value under the history's keys is not one.
 */
export function storedMessages(value: unknown): ChatMessage[] {
  return value instanceof Uint8Array ? parseJsonChunk<ChatMessage>(value) : [];
}

function byId(a: ChatMessage, b: ChatMessage): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function countIds(batches: Batch[]): number {
  return batches.reduce((sum, batch) => sum + batch.ids.length, 0);
}

// New batches are usually the newest: insert from the end.
function insertSorted(batches: Batch[], batch: Batch): void {
  const id = batch.key[2];
  let at = batches.length;
  while (at > 0 && batches[at - 1].key[2] > id) at--;
  batches.splice(at, 0, batch);
}
