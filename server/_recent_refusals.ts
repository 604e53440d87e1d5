/**
 * The consumer refusals a route gave lately, so that a plain `GET` of its address can say why.
 * A browser's `WebSocket` hides a refused handshake's status and reason (the page sees 1006, as
 * for a server that is down), so a reconnecting client asks the address over HTTP once its
 * attempts keep failing (`client/address_check.js`). The checks before the consumer (token,
 * login) are run again for that question; the consumer's own `connect` cannot be (it joins
 * groups, it may have side effects), so its last answer to the same client (address, and its
 * session, user or cookies) and URL is told instead, for 30 s, unless a handshake of the same
 * client was let in since. A refusal with a close code that says "try again later" (1013) is
 * not kept.
 *
 * Bounded: at most {@linkcode MAX_KEPT} per route, the oldest forgotten first. Per process: a
 * question that reaches another process or Worker than the handshake did is answered 426, and
 * the client asks again later.
 */

/** How many refusals a route keeps: each is a short key and a reason of at most 200 characters. */
export const MAX_KEPT = 512;
/** How long a refusal is told: a question comes right after the attempt it follows. */
export const KEPT_MS = 30_000;
/** A URL longer than this is not kept (a question about it gets the plain 426). */
const MAX_KEY_LENGTH = 2_048;
const MAX_REASON_LENGTH = 200;

/** Whose handshake it was: the client's address, its session or user, and the address asked. */
export interface RefusedAsker {
  /** The client's host (behind a trusted proxy, the one it forwarded). */
  client: string;
  /** The session id, the user's name (a token), or the hash of the cookies a visitor sent. */
  who: string;
  /** The path and query the handshake asked for. */
  address: string;
}

/** One route's recent consumer refusals (see the module's comment). */
export class RecentRefusals {
  /** Reason and when it was given, by key; a `Map` keeps insertion order, the oldest first. */
  #kept = new Map<string, { reason: string; at: number }>();
  #now: () => number;

  /** `now` is the clock (ms), a fake one in tests. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Keeps `reason` as the consumer's answer to `asker`. */
  note(asker: RefusedAsker, reason: string): void {
    const key = keyOf(asker);
    if (key === null) return;
    this.#kept.delete(key); // re-inserted as the newest
    this.#kept.set(key, { reason: reason.slice(0, MAX_REASON_LENGTH), at: this.#now() });
    if (this.#kept.size > MAX_KEPT) this.#kept.delete(this.#kept.keys().next().value!);
  }

  /** The consumer's answer to `asker` in the last minute, else `undefined`. */
  find(asker: RefusedAsker): string | undefined {
    const key = keyOf(asker);
    if (key === null) return undefined;
    const kept = this.#kept.get(key);
    if (kept === undefined) return undefined;
    if (this.#now() - kept.at > KEPT_MS) {
      this.#kept.delete(key);
      return undefined;
    }
    return kept.reason;
  }

  /** Forgets what was kept for `asker`: its handshake was let in since. */
  forget(asker: RefusedAsker): void {
    const key = keyOf(asker);
    if (key !== null) this.#kept.delete(key);
  }

  /** The refusals kept (a test's look at the bound). */
  get size(): number {
    return this.#kept.size;
  }
}

function keyOf({ client, who, address }: RefusedAsker): string | null {
  const key = `${client}\n${who}\n${address}`;
  return key.length > MAX_KEY_LENGTH ? null : key;
}
