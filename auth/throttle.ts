/**
 * Slows down password guessing: each login attempt is written to the {@linkcode Store} under
 * its username and its client address before the password is checked, and removed again if
 * it succeeds. When either has more than its allowance of attempts in the sliding window,
 * the attempt is refused (HTTP 429) until the oldest of them ages out.
 *
 * Each attempt is its own key with an expiry, so concurrent attempts, in this or another
 * process, never lose a count the way a read-modify-write counter would; writing the attempt
 * before checking means a burst of parallel guesses is counted before any of them is judged.
 *
 * @example
 * ```ts
 * import type { LoginThrottle } from "@channels/deno";
 *
 * declare const throttle: LoginThrottle;
 * declare function passwordIsRight(): Promise<boolean>;
 *
 * async function logIn(): Promise<Response> {
 *   const verdict = await throttle.begin("ada", "203.0.113.9");
 *   if ("retryAfterSeconds" in verdict) {
 *     const headers = { "retry-after": String(verdict.retryAfterSeconds) };
 *     return new Response("Too many attempts\n", { status: 429, headers });
 *   }
 *   const ok = await passwordIsRight();
 *   if (ok) await verdict.succeeded(); // a failure needs nothing: the attempt stays counted
 *   return new Response(ok ? "Welcome\n" : "Wrong password\n", { status: ok ? 200 : 403 });
 * }
 * ```
 */
import type { Store, StoreKey } from "../storage/store.ts";
import { sortableId } from "../storage/store.ts";
import { usernameKey } from "./account_rules.ts";

/** How many failures are allowed, and over how long. */
export interface ThrottleLimits {
  /** Failures allowed for one username, from any address (none: not counted by username). */
  perUsername?: number;
  /** Failures allowed from one client address, for any username. */
  perAddress: number;
  /** How long a failure counts. */
  windowSeconds: number;
}

/** An attempt that was let through. */
export interface LoginAttempt {
  /** The password was right: this attempt no longer counts as a failure. */
  succeeded(): Promise<void>;
}

/** An attempt that was refused. */
export interface Throttled {
  /** Seconds until an attempt may be let through again. */
  retryAfterSeconds: number;
}

interface AttemptRecord {
  at: number;
}

const LOGIN_PREFIX = "login_attempts";
const MAX_KEY_LENGTH = 200;

/**
 * Counts failed logins per username and per address; under another prefix, other attempts
 * counted the same way (the sign-ups, by address only).
 */
export class LoginThrottle {
  #store: Store;
  #limits: ThrottleLimits;
  #now: () => number;
  #prefix: string;

  /**
   * Keeps the counts in `store`, so every process sharing it sees them, under `prefix` (default
   * `login_attempts`: another prefix counts another kind of attempt); `now` is for tests.
   */
  constructor(
    store: Store,
    limits: ThrottleLimits,
    options: { now?: () => number; prefix?: string } = {},
  ) {
    this.#store = store;
    this.#limits = limits;
    this.#now = options.now ?? Date.now;
    this.#prefix = options.prefix ?? LOGIN_PREFIX;
  }

  /**
   * Records an attempt by `username` (`null`: counted by address only) from `address` and says
   * whether it may proceed.
   */
  async begin(username: string | null, address: string): Promise<LoginAttempt | Throttled> {
    const now = this.#now();
    const prefix = this.#prefix;
    const scopes: [StoreKey, number][] = [
      [[prefix, "address", address.slice(0, MAX_KEY_LENGTH)], this.#limits.perAddress],
    ];
    if (username !== null && this.#limits.perUsername !== undefined) {
      const name = usernameKey(username).slice(0, MAX_KEY_LENGTH);
      scopes.unshift([[prefix, "user", name], this.#limits.perUsername]);
    }
    const id = sortableId(now);
    const windowMs = this.#limits.windowSeconds * 1000;
    const mine = scopes.map(([prefix]) => [...prefix, id]);
    await Promise.all(
      mine.map((key) => this.#store.set(key, { at: now }, { expireInMs: windowMs })),
    );
    const release = (): Promise<void> =>
      Promise.all(mine.map((key) => this.#store.delete(key))).then(() => {});
    let waitMs = 0;
    for (const [prefix, limit] of scopes) {
      waitMs = Math.max(waitMs, await this.#waitMs(prefix, limit, id, now));
    }
    if (waitMs > 0) {
      await release(); // a refused attempt checked no password: it is not a failure
      return { retryAfterSeconds: Math.ceil(waitMs / 1000) };
    }
    return { succeeded: release };
  }

  /** How long until the attempts under `prefix`, with ours, fit in `limit` (0: they do). */
  async #waitMs(prefix: StoreKey, limit: number, id: string, now: number): Promise<number> {
    const windowMs = this.#limits.windowSeconds * 1000;
    const recent = await this.#store.list<AttemptRecord>(prefix, {
      limit: limit + 1,
      reverse: true,
    });
    // The store's expiry may be lazy: entries older than the window no longer count.
    const live = recent.filter((entry) => entry.value.at > now - windowMs);
    if (live.length <= limit) return 0;
    const others = live.filter((entry) => entry.key[entry.key.length - 1] !== id);
    const oldestBlocking = others[Math.min(limit, others.length) - 1];
    return Math.max(1000, oldestBlocking.value.at + windowMs - now);
  }
}

/** The host part of a `host:port` client address (`[::1]:5000` -> `::1`). */
export function clientHost(client: string): string {
  if (client.startsWith("[")) return client.slice(1, client.indexOf("]"));
  const colons = client.split(":").length - 1;
  return colons === 1 ? client.slice(0, client.indexOf(":")) : client;
}
