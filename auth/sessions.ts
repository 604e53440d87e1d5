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
import type { Store } from "../storage/store.ts";

/** What the server remembers about one session. Times are milliseconds since the epoch. */
export interface SessionRecord {
  /** The signed-in user. */
  username: string;
  /** When the user logged in. */
  createdAt: number;
  /** When the session ends, whatever the cookie says. */
  expiresAt: number;
}

/** How sessions are kept. */
export interface SessionStoreOptions {
  /** How long a session lives, in seconds. */
  maxAgeSeconds: number;
  /** The clock (tests move it). */
  now?: () => number;
}

const SESSIONS = "sessions";
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
   */
  async create(
    username: string,
    options: { replacing?: string | null } = {},
  ): Promise<{ id: string; record: SessionRecord }> {
    if (options.replacing) await this.delete(options.replacing);
    const id = crypto.getRandomValues(new Uint8Array(ID_BYTES))
      .toBase64({ alphabet: "base64url", omitPadding: true });
    const now = this.#now();
    const record: SessionRecord = {
      username,
      createdAt: now,
      expiresAt: now + this.maxAgeSeconds * 1000,
    };
    await this.#store.set(await sessionKey(id), record, {
      expireInMs: this.maxAgeSeconds * 1000,
    });
    return { id, record };
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
    return record;
  }

  /** Ends a session; an unknown id is a no-op. */
  async delete(id: string): Promise<void> {
    if (!ID_PATTERN.test(id)) return;
    await this.#store.delete(await sessionKey(id));
  }
}

/**
 * The group every login-required socket of a session joins, so logging out can close them.
 * Named by a hash of the id: group names travel to the layer (and Redis), session ids must not.
 */
export async function sessionGroup(id: string): Promise<string> {
  return `${SESSION_GROUP_PREFIX}${(await sha256Hex(id)).slice(0, 32)}`;
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
