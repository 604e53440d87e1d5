/**
 * The registered users, kept in the {@linkcode Store} so every process sees the same ones.
 * Each user sits under the case-folded NFKC form of its name, so "Ada" and "ADA" are one
 * account and creating it is a single atomic `create`.
 */
import type { Store } from "../storage/store.ts";
import type { PasswordHasher } from "./passwords.ts";
import { MAX_USERNAME_LENGTH, normalizeUsername, usernameKey } from "./account_rules.ts";

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

/** Finds, creates and authenticates users. */
export class UserDirectory {
  #store: Store;
  #hasher: PasswordHasher;

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
    // No user has a longer name (the account rules refuse it, normalised), and a store's key
    // has a limit (Deno KV's is 2 KiB): such a name is nobody, not a failed read.
    const key = usernameKey(username);
    if (key === "" || [...key].length > MAX_USERNAME_LENGTH) return null;
    const user = await this.#store.get<UserRecord>([USERS, key]);
    // Users stored before `staff` existed are not staff.
    return user === null ? null : { ...user, staff: user.staff === true };
  }

  /** Makes `username` staff (or not); the updated user, or `null` when there is none. */
  async setStaff(username: string, staff: boolean): Promise<UserRecord | null> {
    const user = await this.find(username);
    if (user === null) return null;
    const updated = { ...user, staff };
    await this.#store.set([USERS, usernameKey(username)], updated);
    return updated;
  }

  /**
   * The user when `password` is theirs, else `null`. An unknown name costs the same hash as
   * a wrong password, so the answer's timing does not tell which one it was.
   */
  async verifyCredentials(username: string, password: string): Promise<UserRecord | null> {
    const user = await this.find(username);
    if (user === null) {
      await this.#hasher.verifyDummy(password);
      return null;
    }
    if (!await this.#hasher.verify(password, user.passwordHash)) return null;
    if (this.#hasher.needsRehash(user.passwordHash)) {
      // The iteration count was raised since this hash was made: upgrade it while we know
      // the password. Another login doing the same at once writes an equally good hash.
      const upgraded = { ...user, passwordHash: await this.#hasher.hash(password) };
      await this.#store.set([USERS, usernameKey(username)], upgraded);
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
