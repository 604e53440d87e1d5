/**
 * Server-side sessions in the {@linkcode Store}: the browser holds only a random id; the
 * record (who, since when, until when) lives under the SHA-256 of that id, so a leaked store
 * does not hand out usable cookies.
 *
 * @example
 * ```ts
 * import { SessionStore, type Store } from "@channels/deno";
 *
 * declare const store: Store;
 * declare const oldId: string | null; // the session this log-in replaces, if any
 * const sessions = new SessionStore(store, { maxAgeSeconds: 14 * 24 * 3600 });
 * const { id } = await sessions.create("ada", { replacing: oldId });
 * (await sessions.get(id))?.username; // "ada"
 * await sessions.delete(id);
 * ```
 */
import type { Store, StoreChange } from "../storage/store.ts";
import { lowerCaseUsernameKey, usernameKey } from "./account_rules.ts";

/** What the server remembers about one session. Times are milliseconds since the epoch. */
export interface SessionRecord {
  /** The signed-in user. */
  username: string;
  /** When the user logged in. */
  createdAt: number;
  /** When the session ends, whatever the cookie says. */
  expiresAt: number;
  /**
   * True once the session is in its user's index (see {@linkcode SessionStore.endAllOf}).
   * Sessions made before the index existed lack it, and are added when next read.
   */
  indexed?: boolean;
  /**
   * The user's `passwordChangedAt` (0 when never) as it was when the password was checked for
   * this session: once the password changes, the session is refused, even one made by a log-in
   * that checked the old password while the change ran (see `identifyRequest`).
   */
  passwordSince?: number;
}

/** Options of {@linkcode SessionStore.endAllOf}. */
export interface EndAllOptions {
  /** The id of a session to keep (the one that asked). */
  except?: string | null;
  /** True when a session made for this name is the user's (default: every one found is). */
  isSameUser?: (username: string) => boolean | Promise<boolean>;
}

/** How sessions are kept. */
export interface SessionStoreOptions {
  /** How long a session lives, in seconds. */
  maxAgeSeconds: number;
  /** The clock (tests move it). */
  now?: () => number;
}

const SESSIONS = "sessions";
// `[RENEWED_SESSIONS, <session hash>]`: a session its user's new log-in replaced, for a while.
const RENEWED_SESSIONS = "renewed_sessions";
/**
 * How long a renewed session is known as one (see {@linkcode SessionStore.wasRenewed}): past a
 * handshake under way, a password-change check, a layer's short outage. Each is a small key
 * that expires, so they never pile up.
 */
export const RENEWAL_KNOWN_MS = 5 * 60_000;
// `[USER_SESSIONS, <case-folded username>, <session hash>]`: each user's sessions, to end them all.
const USER_SESSIONS = "user_sessions";

// What a renewed session's mark holds: the hash of the session that replaced it, and when.
interface RenewalMark {
  by: string;
  at: number;
}
const ID_BYTES = 32; // 256 bits; base64url without padding is 43 characters
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const encoder = new TextEncoder();

/** Creates, reads and ends sessions. */
export class SessionStore {
  /** How long a session lives: the cookie's `Max-Age` and the record's expiry. */
  readonly maxAgeSeconds: number;
  #store: Store;
  #now: () => number;

  /** Keeps the sessions in `store`. */
  constructor(store: Store, options: SessionStoreOptions) {
    this.#store = store;
    this.maxAgeSeconds = options.maxAgeSeconds;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Starts a session for `username` under a new random id. The session named by `replacing`
   * (the one the browser had before logging in) is ended, so no id outlives a login.
   * `passwordSince`: the user's `passwordChangedAt` (0 when never) read with the password the
   * log-in checked (see {@linkcode SessionRecord.passwordSince}). `replaced`: the record of
   * the session it ended (`null` for none), so a caller can tell a renewal from a change of user.
   * A session of the same user ended so is a renewal: {@linkcode SessionStore.wasRenewed} says
   * so for a while.
   */
  async create(
    username: string,
    options: { replacing?: string | null; passwordSince?: number } = {},
  ): Promise<{ id: string; record: SessionRecord; replaced: SessionRecord | null }> {
    const id = crypto.getRandomValues(new Uint8Array(ID_BYTES))
      .toBase64({ alphabet: "base64url", omitPadding: true });
    const hash = await sha256Hex(id);
    const now = this.#now();
    const record: SessionRecord = {
      username,
      createdAt: now,
      expiresAt: now + this.maxAgeSeconds * 1000,
      indexed: true,
      ...(options.passwordSince !== undefined && { passwordSince: options.passwordSince }),
    };
    // The new session first: whoever finds the old one gone and marked renewed finds the new
    // one live (see `wasRenewed`). Nobody knows its id before this resolves.
    await this.#writeIndexed(hash, record);
    const replacing = options.replacing;
    const replaced = replacing ? await this.#end(replacing, { username, hash }) : null;
    return { id, record, replaced };
  }

  /** The live session with this id, or `null` (unknown, malformed or expired). */
  async get(id: string): Promise<SessionRecord | null> {
    if (!ID_PATTERN.test(id)) return null;
    const key = await sessionKey(id);
    const record = await this.#store.get<SessionRecord>(key);
    if (record === null) return null;
    // The store's expiry may be lazy (Deno KV deletes expired keys eventually): check here.
    if (record.expiresAt <= this.#now()) {
      await this.#store.delete(key);
      return null;
    }
    // Made before the index (or by a version without it): indexed once, at its first read, so
    // a socket it opens can be closed when its user's password changes.
    if (record.indexed !== true) await this.#addToIndex(key[1], record);
    return record;
  }

  /** Ends a session; resolves with the record it removed (`null`: an unknown id, a no-op). */
  async delete(id: string): Promise<SessionRecord | null> {
    return await this.#end(id);
  }

  /**
   * True for {@linkcode RENEWAL_KNOWN_MS} after the session `id` was replaced by a new log-in
   * of its own user (a password change on its page, a log-in again): a socket of the old id
   * found without its session is then told to reconnect (4002), not that it logged out (4001).
   * Read it after finding the session gone: the mark is written before the session is deleted.
   */
  async wasRenewed(id: string): Promise<boolean> {
    if (!ID_PATTERN.test(id)) return false;
    const mark = await this.#store.get<RenewalMark>([RENEWED_SESSIONS, await sha256Hex(id)]);
    // The store's expiry may be lazy, as for sessions.
    if (mark === null || mark.at + RENEWAL_KNOWN_MS <= this.#now()) return false;
    // Only while the session that replaced it lives: once that one logged out, or the renewal
    // failed before its end, what is left of the old one is logged out too.
    const successor = await this.#store.get<SessionRecord>([SESSIONS, mark.by]);
    return successor !== null && successor.expiresAt > this.#now();
  }

  // Ends the session `id`; one of `renewedBy.username` is marked renewed first, by the session
  // stored under `renewedBy.hash` (see `wasRenewed`).
  async #end(
    id: string,
    renewedBy?: { username: string; hash: string },
  ): Promise<SessionRecord | null> {
    if (!ID_PATTERN.test(id)) return null;
    const key = await sessionKey(id);
    const record = await this.#store.get<SessionRecord>(key);
    if (record === null) return null;
    // The mark, then the record's delete: one after the other, not atomic (a Redis Cluster keeps
    // them on different nodes), so whoever finds the record gone finds the mark. A failure
    // between leaves a mark on a live session: unread while it is live, deleted by its end
    // of any other kind, and it expires.
    const markKey = [RENEWED_SESSIONS, key[1]];
    if (renewedBy !== undefined && record.username === renewedBy.username) {
      const mark: RenewalMark = { by: renewedBy.hash, at: this.#now() };
      await this.#store.set(markKey, mark, { expireInMs: RENEWAL_KNOWN_MS });
    } else {
      // A renewal that failed after its mark left one, and a successor nobody was given: an end
      // of any other kind (a log-out) must not read as a renewal.
      await this.#store.delete(markKey);
    }
    // The record first, then its index entry: one after the other, as a Redis Cluster keeps
    // them on different nodes. A failure between leaves the entry, so a password change still
    // finds the session; the other way round, a live session would be lost to it.
    await this.#store.delete(key);
    for (const prefix of indexPrefixes(record.username)) {
      await this.#store.delete([...prefix, key[1]]);
    }
    return record;
  }

  /**
   * Ends every indexed session of `username` but the one with id `except`, and resolves with
   * the groups of those ended (see {@linkcode sessionGroup}), for their sockets to be closed.
   * Sessions never read since the index existed are not found: `identifyRequest` refuses them
   * by the user's `passwordChangedAt`. Every spelling of the name that folds to the same key is
   * found; `isSameUser` tells apart two accounts an earlier version let differ only by such a
   * letter ("straße", "strasse"), by the name each session was made for.
   */
  async endAllOf(username: string, options: EndAllOptions = {}): Promise<string[]> {
    const kept = options.except ? await sha256Hex(options.except) : null;
    const entries = [];
    for (const prefix of indexPrefixes(username)) {
      entries.push(...await this.#store.list<IndexEntry>(prefix));
    }
    const now = this.#now();
    const groups: string[] = [];
    const records: StoreChange[] = [];
    const indexEntries: StoreChange[] = [];
    // A session may be under both prefixes (a 0.13.0 process and this one indexed it at once):
    // ended once, its entries both deleted.
    const ended = new Set<string>();
    for (const { key, value } of entries) {
      const hash = String(key[key.length - 1]);
      if (hash === kept) continue;
      if (options.isSameUser && !await options.isSameUser(value?.username ?? username)) continue;
      indexEntries.push({ key, delete: true });
      if (ended.has(hash)) continue;
      ended.add(hash);
      records.push({ key: [SESSIONS, hash], delete: true });
      // The store's expiry may be lazy: an expired session is gone already, not ended now.
      if ((value?.expiresAt ?? Infinity) > now) groups.push(groupOfHash(hash));
    }
    // The records, then their entries, as in `delete`.
    if (records.length > 0) await this.#store.writeMany(records);
    if (indexEntries.length > 0) await this.#store.writeMany(indexEntries);
    return groups;
  }

  // Writes a session under `hash`, both expiring with it: its index entry, then its record,
  // one after the other (a Redis Cluster keeps them on different nodes), so no record says
  // `indexed` without its entry, and a session is never live without it.
  async #writeIndexed(hash: string, record: SessionRecord): Promise<void> {
    const expireInMs = Math.max(1, record.expiresAt - this.#now());
    const entry: IndexEntry = { username: record.username, expiresAt: record.expiresAt };
    await this.#store.set(indexKey(record.username, hash), entry, { expireInMs });
    await this.#store.set([SESSIONS, hash], { ...record, indexed: true }, { expireInMs });
  }

  async #addToIndex(hash: string, record: SessionRecord): Promise<void> {
    await this.#writeIndexed(hash, record);
    record.indexed = true;
  }
}

/**
 * The group every login-required socket of a session joins, so logging out can close them.
 * Named by a hash of the id: group names travel to the layer (and Redis), session ids must not.
 */
export async function sessionGroup(id: string): Promise<string> {
  return groupOfHash(await sha256Hex(id));
}

// The group of the session stored under `hash`, the SHA-256 of its id.
function groupOfHash(hash: string): string {
  return `${SESSION_GROUP_PREFIX}${hash.slice(0, 32)}`;
}

// A session in its user's index: whose, and until when.
interface IndexEntry {
  username: string;
  expiresAt: number;
}

// By the case-folded key, as users are: a session made under another spelling of the name
// ("WEISS" for "Weiß", which log-in accepts) is found with the user's.
function indexPrefix(username: string): string[] {
  return [USER_SESSIONS, usernameKey(username)];
}

// Where a user's sessions may be indexed: by the case-folded key, and, for a name it changes
// further ("Straße": "strasse"), by the lower-case key, where 0.13.0 wrote them (its sessions
// say `indexed`, so they are not indexed again when read).
function indexPrefixes(username: string): string[][] {
  const folded = indexPrefix(username);
  const lower = lowerCaseUsernameKey(username);
  return lower === folded[1] ? [folded] : [folded, [USER_SESSIONS, lower]];
}

function indexKey(username: string, hash: string): string[] {
  return [...indexPrefix(username), hash];
}

const SESSION_GROUP_PREFIX = "session.";

/** True for a session's group (see {@linkcode sessionGroup}). */
export function isSessionGroup(group: string): boolean {
  return group.startsWith(SESSION_GROUP_PREFIX);
}

async function sessionKey(id: string): Promise<string[]> {
  return [SESSIONS, await sha256Hex(id)];
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return new Uint8Array(digest).toHex();
}
