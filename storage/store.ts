/**
 * The server's durable state (users, sessions, chat history) goes through this small
 * key-value interface, so where it lives is one choice at start: Deno KV on one machine,
 * Redis when several machines share it.
 *
 * Keys are arrays of strings; `list` returns entries under a prefix in key order, so keys
 * that should sort by time must be built to (see `sortableId`).
 *
 * @example
 * ```ts
 * import type { Store } from "@channels/deno";
 *
 * declare const store: Store;
 * declare const id: string;
 * await store.set(["sessions", id], { username: "ada" }, { expireInMs: 60_000 });
 * const created = await store.create(["users", "ada"], { username: "ada" }); // false if taken
 * const ada = await store.get<{ username: string }>(["users", "ada"]);
 * // false if another process changed it since the read: read again, rather than overwrite
 * await store.replace(["users", "ada"], ada, { ...ada, staff: true });
 * const recent = await store.list(["history", "lobby"], { limit: 50, reverse: true });
 * ```
 */
export interface Store {
  /** The value at `key`, or `null`. */
  get<T>(key: StoreKey): Promise<T | null>;
  /** Writes `value` at `key`, optionally expiring it. */
  set(key: StoreKey, value: unknown, options?: { expireInMs?: number }): Promise<void>;
  /** Writes only when `key` is absent; returns whether it wrote. */
  create(key: StoreKey, value: unknown): Promise<boolean>;
  /**
   * Writes `value` at `key` only while the value there still equals `expected` (field by field,
   * in any order: as `get` returned it, say); returns whether it wrote. The compare-and-set of a
   * read-then-write that another process may race (two changes to one user): `false` says the
   * key changed since `expected` was read, or was written again during the call, and the caller
   * reads again rather than overwrite. A missing key is never replaced (`create` makes one); the
   * value written does not expire.
   */
  replace(key: StoreKey, expected: unknown, value: unknown): Promise<boolean>;
  /** Removes `key`; a missing key is a no-op. */
  delete(key: StoreKey): Promise<void>;
  /**
   * Applies changes in order with as few round trips as the backend allows: one store
   * operation for many writes is what keeps periodic batch writers (chat history) cheap.
   * Not atomic as a whole; each change is. A store that writes the changes in order, in parts,
   * and fails after some were written rejects with {@linkcode PartlyWrittenError}.
   */
  writeMany(changes: readonly StoreChange[]): Promise<void>;
  /** Entries under `prefix` (at any depth), in key order (or reversed), at most `limit`. */
  list<T>(
    prefix: StoreKey,
    options?: { limit?: number; reverse?: boolean },
  ): Promise<StoreEntry<T>[]>;
  /** Releases the connection; safe to call twice. */
  close(): void;
}

/**
 * A `writeMany` that failed after the first `written` of its changes were written (in order):
 * what was planned as one batch is then partly in the store.
 */
export class PartlyWrittenError extends Error {
  /** `written`: how many of the changes, from the first, are in the store; `cause`: why not all. */
  constructor(readonly written: number, cause: unknown) {
    super(`Only ${written} change(s) written: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

/**
 * One change for {@linkcode Store.writeMany}: a write, which expires after `expireInMs` when
 * it is given (as `set`'s option: the in-process streams write an unused room's record so), or a
 * removal.
 */
export type StoreChange =
  | { key: StoreKey; value: unknown; expireInMs?: number }
  | { key: StoreKey; delete: true };

/** A key: a path of strings. */
export type StoreKey = readonly string[];

/** One entry returned by {@linkcode Store.list}. */
export interface StoreEntry<T> {
  /** The entry's full key, prefix included. */
  key: StoreKey;
  /** The value as it was written. */
  value: T;
}

let lastTime = -1; // no time yet: the first call makes its prefix, even at 0
let lastPrefix = "";
let sequence = 0;
// Drawn once per process (each Worker has its own): ids of two processes never collide, and
// an id costs no random draw.
const PROCESS_TAIL = crypto.getRandomValues(new Uint32Array(1))[0].toString(36).padStart(7, "0");
const FIRST_TAIL = `0000-${PROCESS_TAIL}`;

/**
 * An id that sorts by creation time as a string (time in base 36, a counter, then a tail
 * unique to this process), so lexicographic key order is time order across processes.
 * Within a process each id sorts after the one before, even when the clock is stepped back
 * (NTP, a resumed VM): its time then stays where it was and the counter goes on, so no id is
 * given twice (a chat page drops a message whose id it has seen).
 */
export function sortableId(now: number = Date.now()): string {
  // A time that is no time (NaN from an invalid Date) would stop every later id from moving.
  if (!Number.isFinite(now)) throw new RangeError(`sortableId needs a finite time, got ${now}`);
  if (now <= lastTime && sequence < MAX_SEQUENCE) sequence++;
  else {
    // Made once per millisecond: ids of a busy moment share it. A counter that would outgrow
    // its four digits (a clock held back) borrows the next millisecond.
    lastTime = Math.max(now, lastTime + 1);
    lastPrefix = `${base36Time(lastTime)}-`;
    sequence = 0;
  }
  // The first id of a millisecond (most ids, but for a burst) has its counter's text made once.
  if (sequence === 0) return lastPrefix + FIRST_TAIL;
  return `${lastPrefix}${sequence.toString(36).padStart(4, "0")}-${PROCESS_TAIL}`;
}

/**
 * A sortable id, in {@linkcode sortableId}'s form, made from a time (ms) and a seed alone: the
 * same in every process that has both. For an event from outside that several processes
 * receive (a Django `group_send`), whose copies must carry one id wherever they are sent from.
 */
export function sortableIdFrom(time: number, seed: string): string {
  if (!Number.isFinite(time)) {
    throw new RangeError(`sortableIdFrom needs a finite time, got ${time}`);
  }
  const hash = stableHash36(seed).padStart(11, "0");
  return `${base36Time(time)}-${hash.slice(-11, -7)}-${hash.slice(-7)}`;
}

/**
 * A 53-bit hash of `text` in base 36 (cyrb53): the same in every process and version, so it
 * may name what is stored. Not for secrets.
 */
export function stableHash36(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

// The counter's four base-36 digits: beyond this it would no longer sort as a string.
const MAX_SEQUENCE = 36 ** 4 - 1;

const SPLIT = 36 ** 5;

// The high half of the last time made, and its text: it changes once in 17 hours.
let lastHigh = -1;
let lastHighText = "";

// `now.toString(36)`, 9 digits: a time in ms is no small integer to V8, and its base-36 text
// goes through the runtime's double conversion (3x slower); its two halves are small integers,
// and the high one's text (at least 4 digits, as the 9 need) is made only when it changes.
function base36Time(now: number): string {
  const high = Math.floor(now / SPLIT);
  if (high !== lastHigh) {
    lastHigh = high;
    lastHighText = high.toString(36).padStart(4, "0");
  }
  return lastHighText + (now - high * SPLIT).toString(36).padStart(5, "0");
}
