/**
 * The registered users, kept in the {@linkcode Store} so every process sees the same ones.
 * Each user sits under the case-folded NFKC form of its name, so "Ada" and "ADA" are one
 * account and creating it is a single atomic `create`.
 *
 * Versions before full case folding stored users under their lower-case name. Where the two
 * keys differ (names with "ß" or a final "ς", say), a user is kept under both, so that such a
 * version running beside this one (a rolling deploy on Redis) or after it (a rollback) still
 * finds every account: on first use each directory copies the users it finds under their
 * lower-case key only, a sign-up writes both, and a change writes both. A user whose folded key
 * another account holds already (two accounts that differ only by such a letter, made by such a
 * version) stays where it is, and is found by its own name.
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
  /**
   * When the password last changed (ms since the epoch); absent if never. A session made
   * before it is refused (see `identifyRequest`), so none outlives the change.
   */
  passwordChangedAt?: number;
}

const USERS = "users";

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
    if (!await this.#store.create([USERS, usernameKey(username)], user)) return null;
    const lower = lowerCaseUsernameKey(username);
    // For a version that looks a user up by its lower-case name only (see the module's comment).
    if (lower !== usernameKey(username)) await this.#store.create([USERS, lower], user);
    return user;
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
    if (found === null) return null;
    // Its two copies differ only when an earlier version changed its own (this one writes
    // both): that change is the latest, and this copy takes it.
    const its = lowerCaseUsernameKey(found.username);
    if (its !== key) {
      const copy = await this.#store.get<UserRecord>([USERS, its]);
      if (sameUser(copy, found) && !sameState(copy!, found)) {
        await this.#store.set([USERS, key], copy);
        return { key, user: withStaff(copy!) };
      }
    }
    return { key, user: withStaff(found) };
  }

  // Copies users stored under a lower-case key only to their folded key (see the module's
  // comment), once per directory: an earlier version may have made some since the last start.
  // A copy there already is brought up to date by `#locate` when the user is next looked up.
  async #foldStoredKeys(): Promise<void> {
    for (const { key, value: user } of await this.#store.list<UserRecord>([USERS])) {
      const folded = usernameKey(user.username);
      // `create`: a copy made already, or another account there, stays as it is.
      if (String(key[key.length - 1]) !== folded) await this.#store.create([USERS, folded], user);
    }
  }

  // Writes `updated` to `found`'s other key when that holds the same user, then where `found`
  // was: in that order, a failure between the two leaves the lower-case copy the newer, which
  // `#locate` takes.
  async #update(found: { key: string; user: UserRecord }, updated: UserRecord): Promise<void> {
    const keys = [usernameKey(found.user.username), lowerCaseUsernameKey(found.user.username)];
    for (const other of keys) {
      if (other === found.key) continue;
      const there = await this.#store.get<UserRecord>([USERS, other]);
      if (sameUser(there, found.user)) await this.#store.set([USERS, other], updated);
    }
    await this.#store.set([USERS, found.key], updated);
  }

  /** Makes `username` staff (or not); the updated user, or `null` when there is none. */
  async setStaff(username: string, staff: boolean): Promise<UserRecord | null> {
    const found = await this.#locate(username);
    if (found === null) return null;
    const updated = { ...found.user, staff };
    await this.#update(found, updated);
    return updated;
  }

  /**
   * Sets a new password for `username` (the caller checks the account rules first) and stamps
   * the change; the updated user, or `null` when there is none. The hash is made off the event
   * loop, as at sign-up.
   */
  async setPassword(username: string, password: string): Promise<UserRecord | null> {
    const passwordHash = await this.#hasher.hash(password);
    // Read once the slow hash is made: what changed meanwhile (staff, say) is kept.
    const found = await this.#locate(username);
    if (found === null) return null;
    const updated = { ...found.user, passwordHash, passwordChangedAt: Date.now() };
    await this.#update(found, updated);
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
      const passwordHash = await this.#hasher.hash(password);
      // Read again once the slow hash is made: a password changed meanwhile must not be undone
      // by writing back the record read before it (the old password would work again), and
      // this password is no longer the user's.
      const now = await this.#locate(username);
      if (now === null || now.user.passwordChangedAt !== user.passwordChangedAt) return null;
      const upgraded = { ...now.user, passwordHash };
      await this.#update(now, upgraded);
      return upgraded;
    }
    return user;
  }

  /** Every username, sorted case-insensitively. */
  async usernames(): Promise<string[]> {
    const entries = await this.#store.list<UserRecord>([USERS]);
    // A user kept under two keys (see the module's comment) is listed once, by its folded one.
    const atFolded = (entry: { key: readonly unknown[]; value: UserRecord }) =>
      String(entry.key[entry.key.length - 1]) === usernameKey(entry.value.username);
    const identity = (user: UserRecord) => `${user.username}\u0000${user.createdAt}`;
    const folded = new Set(entries.filter(atFolded).map((entry) => identity(entry.value)));
    return entries
      .filter((entry) => atFolded(entry) || !folded.has(identity(entry.value)))
      .map((entry) => ({ key: entry.key[entry.key.length - 1], name: entry.value.username }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((entry) => entry.name);
  }
}

// Users stored before `staff` existed are not staff.
function withStaff(user: UserRecord): UserRecord {
  return { ...user, staff: user.staff === true };
}

// The same account: a copy of it under its other key (see the module's comment).
function sameUser(a: UserRecord | null, b: UserRecord): boolean {
  return a !== null && a.username === b.username && a.createdAt === b.createdAt;
}

// Whether two copies of one user say the same: what a change writes, its password and staff.
function sameState(a: UserRecord, b: UserRecord): boolean {
  return a.passwordHash === b.passwordHash && (a.staff === true) === (b.staff === true);
}
