/**
 * The registered users, kept in the {@linkcode Store} so every process sees the same ones.
 * Each user sits under the case-folded NFKC form of its name, so "Ada" and "ADA" are one
 * account and creating it is a single atomic `create`.
 *
 * Versions before full case folding stored users under their lower-case name. Where the two
 * keys differ (names with "ß" or a final "ς", say), a user is kept under both, so that such a
 * version running beside this one (a rolling deploy on Redis) or after it (a rollback) still
 * finds every account: on first use each directory copies the users it finds under their
 * lower-case key only, a sign-up writes both, and a change writes both (making the copy when a
 * sign-up has not written it yet). A user whose folded key another account holds already (two
 * accounts that differ only by such a letter, made by such a version) stays where it is, and is
 * found by its own name.
 *
 * A change (a new password, staff, a hash upgrade at log-in) is written only over the record it
 * read, with the store's compare-and-set: one that another change beat (another process's, say)
 * reads again rather than undo it, and one beaten every time gives up with a
 * {@linkcode UserChangeConflictError}.
 */
import type { Store } from "../storage/store.ts";
import type { PasswordHasher } from "./passwords.ts";
import { log } from "../telemetry/log.ts";
import {
  latinLookalike,
  lookalikeKey,
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

/**
 * Thrown by a change to a user (a new password, staff) that other changes to the same user beat
 * every time it read the user again: nothing was written, and the change can be asked for again.
 */
export class UserChangeConflictError extends Error {
  /** The name the change was asked for. */
  readonly username: string;
  /** Names the user. */
  constructor(username: string) {
    super(`User ${JSON.stringify(username)} kept changing while being changed`);
    this.name = "UserChangeConflictError";
    this.username = username;
  }
}

const USERS = "users";
// Who holds each look (`lookalikeKey`): the one account whose name reads so, the first made.
const LOOKALIKES = "user_lookalikes";
// A hold whose account is not found yet is a sign-up between its two writes for this long; after
// it, one that stopped between them (its account never made), and the look is free again.
const HOLD_PENDING_MS = 60_000;
// How many holds of accounts made before are written at once.
const HOLDS_AT_ONCE = 64;

// What the store keeps under a look: the account that holds it, and since when (0: an account
// made before looks were held, given its hold later).
interface LookalikeHold {
  username: string;
  at: number;
}
// How many times a change reads the user again after another change landed between its read
// and its write, before it gives up rather than overwrite.
const CHANGE_ATTEMPTS = 5;

// Where `#locate` found a user, with what it read there: a change is written only over that.
interface Located {
  key: string;
  user: UserRecord;
  // The record as stored at `key` (`user` adds what older records lack).
  stored: UserRecord;
  // Its copy under its lower-case key, when it has one (see the module's comment), as read.
  copy?: { key: string; stored: UserRecord };
  // Its lower-case key, when it should have a copy there and nothing was read there: a sign-up
  // between its two writes (or one that stopped between them).
  uncopied?: string;
}

/** Finds, creates and authenticates users. */
export class UserDirectory {
  #store: Store;
  #hasher: PasswordHasher;
  #folded: Promise<void> | null = null;
  #lookalikesHeld: Promise<void> | null = null;

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
    // Held first: of two sign-ups at once with names that look alike, one is refused.
    if (!await this.#holdLookalike(user.username)) return null;
    if (!await this.#store.create([USERS, usernameKey(username)], user)) return null;
    const lower = lowerCaseUsernameKey(username);
    // For a version that looks a user up by its lower-case name only (see the module's comment).
    // Refused, the sign-up stands: a change to the new user that landed between the two writes
    // made the copy already, newer than `user` (see `#update`).
    if (lower !== usernameKey(username) && await this.#store.create([USERS, lower], user)) {
      // A version before this one changes the folded key alone: one that did so between the two
      // writes is taken into the copy, which `#locate` would otherwise take as the latest.
      const now = await this.#store.get<UserRecord>([USERS, usernameKey(username)]);
      if (sameUser(now, user) && !sameState(now!, user)) {
        await this.#store.replace([USERS, lower], user, now);
      }
    }
    return user;
  }

  /**
   * The existing user `username` passes for, or `null`: one whose name reads the same once the
   * letters of other scripts drawn like Latin ones in either are read as those ("сarol", with a
   * Cyrillic "с", passes for "carol", and "carol" for "сarol"). A sign-up is refused such a name,
   * so nobody can write in a room as another account, whichever of the two came first.
   */
  async lookalikeOf(username: string): Promise<UserRecord | null> {
    const name = normalizeUsername(username);
    if (name === "" || [...name].length > MAX_USERNAME_LENGTH) return null;
    await this.#holdStoredLookalikes();
    const hold = await this.#store.get<LookalikeHold>([LOOKALIKES, lookalikeKey(name)]);
    if (hold !== null && usernameKey(hold.username) !== usernameKey(name)) {
      const holder = await this.find(hold.username);
      if (holder !== null) return holder;
    }
    // An account that a version before this one made since this directory's first look has no
    // hold yet: the Latin reading of the name is looked up too.
    const latin = latinLookalike(name);
    if (usernameKey(latin) === usernameKey(name)) return null;
    return await this.find(latin);
  }

  // Holds the look of `name` for its new account; false when another account holds it (or is
  // being made with it).
  async #holdLookalike(name: string): Promise<boolean> {
    await this.#holdStoredLookalikes();
    const key = [LOOKALIKES, lookalikeKey(name)];
    const hold: LookalikeHold = { username: name, at: Date.now() };
    if (await this.#store.create(key, hold)) return true;
    const held = await this.#store.get<LookalikeHold>(key);
    if (held === null || usernameKey(held.username) === usernameKey(name)) return true;
    if (await this.find(held.username) !== null) return false;
    if (Date.now() - held.at < HOLD_PENDING_MS) return false;
    return await this.#store.replace(key, held, hold);
  }

  // Gives every stored account without one the hold of its look, once per directory (the users
  // made before looks were held, or by a version before this one since), the oldest first: of two
  // such accounts that look alike, the first made holds it.
  async #holdStoredLookalikes(): Promise<void> {
    await (this.#lookalikesHeld ??= this.#holdEachLookalike().catch((error) => {
      // Tried again at the next sign-up; meanwhile a look's Latin reading is looked up.
      this.#lookalikesHeld = null;
      log.warn("Users: the holds of their names' looks were not all made", error);
    }));
  }

  async #holdEachLookalike(): Promise<void> {
    const held = new Set(
      (await this.#store.list<LookalikeHold>([LOOKALIKES])).map((entry) => entry.key.at(-1)),
    );
    const users = (await this.#store.list<UserRecord>([USERS])).map((entry) => entry.value)
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
    const missing: { look: string; username: string }[] = [];
    for (const user of users) {
      const look = lookalikeKey(user.username);
      if (held.has(look)) continue;
      held.add(look); // the first made, as sorted, keeps it
      missing.push({ look, username: user.username });
    }
    // Some at a time rather than one after another: a sign-up (or a Django handshake) waits for
    // this, and a store of many accounts on a remote Redis would take a round trip for each.
    for (let i = 0; i < missing.length; i += HOLDS_AT_ONCE) {
      await Promise.all(
        missing.slice(i, i + HOLDS_AT_ONCE).map(({ look, username }) =>
          this.#store.create([LOOKALIKES, look], { username, at: 0 })
        ),
      );
    }
  }

  /** The user called `username` (in any case), or `null`. */
  async find(username: string): Promise<UserRecord | null> {
    return (await this.#locate(username))?.user ?? null;
  }

  // The user, the key it is stored under and what was read there.
  async #locate(username: string): Promise<Located | null> {
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
      if (own !== null) return { key: lower, user: withStaff(own), stored: own };
    }
    if (found === null) return null;
    const its = lowerCaseUsernameKey(found.username);
    const copy = its === key ? null : await this.#store.get<UserRecord>([USERS, its]);
    if (!sameUser(copy, found)) {
      // Nothing there yet: a change makes the copy (see `#update`). Another account there (two
      // that differ only by such a letter, signing up at once under two versions) keeps it, and
      // this one stays under its folded key only.
      const uncopied = its !== key && copy === null ? its : undefined;
      return { key, user: withStaff(found), stored: found, uncopied };
    }
    // Its two copies differ only when an earlier version changed its own (this one writes
    // both): that change is the latest, and this copy takes it. Whether or not it is written:
    // if this copy changed since the read, so did the other (a change writes that one first).
    const latest = sameState(copy!, found) ? found : copy!;
    if (latest !== found) await this.#store.replace([USERS, key], found, latest);
    return { key, user: withStaff(latest), stored: latest, copy: { key: its, stored: copy! } };
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

  // Writes `updated` over what `#locate` read, unless another change landed since; whether it
  // did. A user kept under two keys is compared and set on each, its lower-case copy first:
  // when the copies differ `#locate` takes that one, so its write is the change (and one that
  // finds it changed writes nothing). The other copy follows; finding that one changed means a
  // later change wrote it (after the lower-case copy, as this one did), or a look-up brought it
  // up to date with this change already.
  //
  // A user with no copy yet where it should have one gets it made, first: else a sign-up between
  // its two writes would then make that copy with the record this change replaced, and `#locate`
  // would take it as the latest and undo the change. A copy made meanwhile (that sign-up's
  // second write) means reading again; one made here leaves the sign-up's write refused, which
  // it takes in its stride.
  async #update(found: Located, updated: UserRecord): Promise<boolean> {
    const { copy, uncopied } = found;
    if (uncopied !== undefined) return await this.#updateUncopied(found, uncopied, updated);
    if (copy && !await this.#store.replace([USERS, copy.key], copy.stored, updated)) return false;
    return await this.#store.replace([USERS, found.key], found.stored, updated) ||
      copy !== undefined;
  }

  // The copy made first, then the folded key. That one changed since the read (a version
  // before this one writes it alone): the copy takes what is there now, not this change, which
  // reads again. Else the copy, newer to `#locate`, would undo that write. Not every time: a
  // look-up of the user between the copy and this (a log-in) takes the copy as the latest and
  // writes it back; a version that writes with plain sets can always lose a change so.
  async #updateUncopied(found: Located, uncopied: string, updated: UserRecord): Promise<boolean> {
    if (!await this.#store.create([USERS, uncopied], updated)) return false;
    if (await this.#store.replace([USERS, found.key], found.stored, updated)) return true;
    const now = await this.#store.get<UserRecord>([USERS, found.key]);
    if (now !== null) await this.#store.replace([USERS, uncopied], updated, now);
    return false;
  }

  // Writes `change(user)` for `username`; the updated user, or `null` when there is none.
  // Another change (another process's, or this one's) landed between the read and the write:
  // read again and make this change over that one, rather than overwrite it.
  async #change(
    username: string,
    change: (user: UserRecord) => UserRecord,
  ): Promise<UserRecord | null> {
    for (let attempt = 1;; attempt++) {
      const found = await this.#locate(username);
      if (found === null) return null;
      const updated = change(found.user);
      if (await this.#update(found, updated)) return updated;
      if (attempt === CHANGE_ATTEMPTS) {
        throw new UserChangeConflictError(username);
      }
    }
  }

  /** Makes `username` staff (or not); the updated user, or `null` when there is none. */
  async setStaff(username: string, staff: boolean): Promise<UserRecord | null> {
    return await this.#change(username, (user) => ({ ...user, staff }));
  }

  /**
   * Sets a new password for `username` (the caller checks the account rules first) and stamps
   * the change; the updated user, or `null` when there is none. The hash is made off the event
   * loop, as at sign-up.
   */
  async setPassword(username: string, password: string): Promise<UserRecord | null> {
    const passwordHash = await this.#hasher.hash(password);
    // Read once the slow hash is made: what changed meanwhile (staff, say) is kept.
    return await this.#change(
      username,
      (user) => ({ ...user, passwordHash, passwordChangedAt: Date.now() }),
    );
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
      // the password. Of two log-ins doing so at once, the first to write wins.
      const passwordHash = await this.#hasher.hash(password);
      // Written only over the record the password was checked against: a password changed
      // while the hash was made must not be undone (the old password would work again).
      const upgraded = { ...user, passwordHash };
      if (await this.#update(found, upgraded)) return upgraded;
      // Another change landed first, and this hash waits for the next log-in. A new password
      // means this one is no longer the user's; anything else (staff, or another log-in's
      // upgrade) leaves it theirs, and the user is as it is now.
      const now = await this.#locate(username);
      if (now === null || now.user.passwordChangedAt !== user.passwordChangedAt) return null;
      return now.user;
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
