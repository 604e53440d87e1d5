/**
 * Caps on open WebSockets per client address and per signed-in user, so one client (or one
 * stolen token) cannot hold every socket a process can serve. The handshake takes a lease
 * before the consumer's `connect` runs and gives it back when the connection finishes; a
 * handshake over a cap is refused with 429 Too Many Requests (the client may retry once it
 * has closed some) and a REJECT line that says which cap.
 *
 * The counts are per process: with `--workers N` or several servers each enforces its own,
 * so a client may hold up to N times the cap in all. Behind a reverse proxy every client has
 * the proxy's address unless `TRUST_PROXY` is set (the address is then `X-Forwarded-For`'s).
 *
 * @example
 * ```ts
 * import { ConnectionCaps } from "@channels/deno";
 *
 * const caps = new ConnectionCaps({ perAddress: 256, perUser: 64 });
 * function upgrade(request: Request): Response {
 *   const lease = caps.acquire("203.0.113.7", "ada");
 *   if ("refused" in lease) return new Response(lease.refused, { status: 429 });
 *   const { socket, response } = Deno.upgradeWebSocket(request);
 *   socket.onclose = () => lease.release(); // when the socket has finished
 *   return response;
 * }
 * ```
 */

/** The caps; 0 means no cap. */
export interface CapLimits {
  /** Open sockets one client address may hold. */
  perAddress: number;
  /** Open sockets one signed-in user may hold (anonymous sockets count per address only). */
  perUser: number;
}

/** A granted place, to give back once; `release` is safe to call twice. */
export interface CapLease {
  /** Gives the place back. */
  release(): void;
}

/** What the caps refused so far and what they hold now, for the metrics. */
export interface CapStats {
  /** Handshakes refused because their address held `perAddress` sockets. */
  refusedPerAddress: number;
  /** Handshakes refused because their user held `perUser` sockets. */
  refusedPerUser: number;
  /** Addresses holding at least one socket. */
  addresses: number;
  /** Signed-in users holding at least one socket. */
  users: number;
}

/** Counts open sockets per address and per user, and refuses those over a cap. */
export class ConnectionCaps {
  readonly #limits: CapLimits;
  readonly #perAddress = new Map<string, number>();
  readonly #perUser = new Map<string, number>();
  #refusedPerAddress = 0;
  #refusedPerUser = 0;

  /** Enforces `limits`. */
  constructor(limits: CapLimits) {
    this.#limits = limits;
  }

  /**
   * Takes a place for a socket from `address` for `user` (`null` when anonymous), or says
   * which cap refuses it. Synchronous, so two handshakes at once cannot both take the last.
   */
  acquire(
    address: string,
    user: string | null,
  ): CapLease | { refused: string; cap: "address" | "user" } {
    const { perAddress, perUser } = this.#limits;
    if (perAddress > 0 && (this.#perAddress.get(address) ?? 0) >= perAddress) {
      this.#refusedPerAddress++;
      return {
        refused: `Too many connections from this address (the cap is ${perAddress})`,
        cap: "address",
      };
    }
    if (user !== null && perUser > 0 && (this.#perUser.get(user) ?? 0) >= perUser) {
      this.#refusedPerUser++;
      return {
        refused: `Too many connections for this user (the cap is ${perUser})`,
        cap: "user",
      };
    }
    increment(this.#perAddress, address);
    if (user !== null) increment(this.#perUser, user);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        decrement(this.#perAddress, address);
        if (user !== null) decrement(this.#perUser, user);
      },
    };
  }

  /** Refusals so far and current holders. */
  stats(): CapStats {
    return {
      refusedPerAddress: this.#refusedPerAddress,
      refusedPerUser: this.#refusedPerUser,
      addresses: this.#perAddress.size,
      users: this.#perUser.size,
    };
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

// Keys at zero are removed: a map of every address ever seen would grow without bound.
function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
