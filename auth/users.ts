/**
 * The registered users, kept in the {@linkcode Store} so every process sees the same ones.
 * Each user sits under the case-folded NFKC form of its name, so "Ada" and "ADA" are one
 * account and creating it is a single atomic `create`.
 *
 * Users stored before case was folded fully sit under their lower-case name. On first use, each
 * directory moves those whose two keys differ (names with "ß" or a final "ς", say) once, and
 * marks the move done. A user whose folded key another account holds already (two accounts that
 * differ only by such a letter, made before) stays where it is, and is found by its own name.
 */
import type { Store } from "../storage/store.ts";
import type { PasswordHasher } from "./passwords.ts";
import { log } from "../telemetry/log.ts";
import {
  lowerCaseUsernameKey,
  MAX_USERNAME_LENGTH,
  normalizeUsername,
  usernameKey,
} from "./account_rules.ts";

/**
 * The group that hears about accounts; each event is
 * `{ type: "account.created", username }` once a sign-up succeeded.
 */
export const ACCOUNT_EVENTS_GROUP = "accounts";

/** A stored user. */
export interface UserRecord {
  /** The name as the user typed it, NFKC-normalised. */
  username: string;
  /** Django's format, `pbkdf2_sha256$<iterations>$<salt>$<hash>`; never the password. */
  passwordHash: string;
  /** ISO time of sign-up. */
  createdAt: string;
  /** May use the admin pages (`deno task createsuperuser`); false unless made so. */
  staff: boolean;
}

const USERS = "users";
// Set once the users stored under lower-case keys were moved to folded ones.
const FOLDED_KEYS_MARK = ["migrations", "users_case_folded"];

/** Finds, creates and authenticates users. */
export class UserDirectory {
  #store: Store;
  #hasher: PasswordHasher;
  #folded: Promise<void> | null = null;

  /** Keeps users in `store`; `hasher` sets how slowly passwords are hashed. */
  constructor(store: Store, hasher: PasswordHasher) {
    this.#store = store;
    this.#hasher = hasher;
  }

  /**
   * Creates a user; `null` when the name is taken (in any case). The caller checks the
   * account rules first.
   */
  async create(
    username: string,
    password: string,
    options: { staff?: boolean } = {},
  ): Promise<UserRecord | null> {
    if (await this.find(username) !== null) return null; // spares a slow hash; `create` decides
    const user: UserRecord = {
      username: normalizeUsername(username),
      passwordHash: await this.#hasher.hash(password),
      createdAt: new Date().toISOString(),
      staff: options.staff === true,
    };
    return await this.#store.create([USERS, usernameKey(username)], user) ? user : null;
  }

  /** The user called `username` (in any case), or `null`. */
  async find(username: string): Promise<UserRecord | null> {
    return (await this.#locate(username))?.user ?? null;
  }

  // The user and the key it is stored under.
  async #locate(username: string): Promise<{ key: string; user: UserRecord } | null> {
    // No user has a longer name (the account rules refuse it, normalised), and a store's key
    // has a limit (Deno KV's is 2 KiB): such a name is nobody, not a failed read.
    const name = normalizeUsername(username);
    if (name === "" || [...name].length > MAX_USERNAME_LENGTH) return null;
    const key = usernameKey(name);
    await (this.#folded ??= this.#foldStoredKeys().catch((error) => {
      // Tried again at the next use; meanwhile each user is found where it is.
      this.#folded = null;
      log.warn("Users: the move to case-folded keys did not finish", error);
    }));
    const found = await this.#store.get<UserRecord>([USERS, key]);
    const lower = lowerCaseUsernameKey(username);
    // An account left under its lower-case key, when another holds the folded one, is found by
    // its own name (see the module's comment).
    if (lower !== key && (found === null || lowerCaseUsernameKey(found.username) !== lower)) {
      const own = await this.#store.get<UserRecord>([USERS, lower]);
      if (own !== null) return { key: lower, user: withStaff(own) };
    }
    return found === null ? null : { key, user: withStaff(found) };
  }

  // Moves users stored under lower-case keys that differ from their folded ones; once per store.
  async #foldStoredKeys(): Promise<void> {
    if (await this.#store.get(FOLDED_KEYS_MARK) !== null) return;
    for (const { key, value: user } of await this.#store.list<UserRecord>([USERS])) {
      const stored = String(key[key.length - 1]);
      const folded = usernameKey(user.username);
      if (stored === folded) continue;
      // Another process may be moving it at the same time: only a copy of this very user at
      // the folded key lets the old one go.
      await this.#store.create([USERS, folded], user);
      const there = await this.#store.get<UserRecord>([USERS, folded]);
      if (there?.username === user.username && there.createdAt === user.createdAt) {
        await this.#store.delete([USERS, stored]);
      }
    }
    await this.#store.set(FOLDED_KEYS_MARK, new Date().toISOString());
  }

  /** Makes `username` staff (or not); the updated user, or `null` when there is none. */
  async setStaff(username: string, staff: boolean): Promise<UserRecord | null> {
    const found = await this.#locate(username);
    if (found === null) return null;
    const updated = { ...found.user, staff };
    await this.#store.set([USERS, found.key], updated);
    return updated;
  }

  /**
   * The user when `password` is theirs, else `null`. An unknown name costs the same hash as
   * a wrong password, so the answer's timing does not tell which one it was.
   */
  async verifyCredentials(username: string, password: string): Promise<UserRecord | null> {
    const found = await this.#locate(username);
    if (found === null) {
      await this.#hasher.verifyDummy(password);
      return null;
    }
    const user = found.user;
    if (!await this.#hasher.verify(password, user.passwordHash)) return null;
    if (this.#hasher.needsRehash(user.passwordHash)) {
      // The iteration count was raised since this hash was made: upgrade it while we know
      // the password. Another login doing the same at once writes an equally good hash.
      const upgraded = { ...user, passwordHash: await this.#hasher.hash(password) };
      await this.#store.set([USERS, found.key], upgraded);
      return upgraded;
    }
    return user;
  }

  /** Every username, sorted case-insensitively. */
  async usernames(): Promise<string[]> {
    const entries = await this.#store.list<UserRecord>([USERS]);
    return entries
      .map((entry) => ({ key: entry.key[entry.key.length - 1], name: entry.value.username }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((entry) => entry.name);
  }
}

// Users stored before `staff` existed are not staff.
function withStaff(user: UserRecord): UserRecord {
  return { ...user, staff: user.staff === true };
}
