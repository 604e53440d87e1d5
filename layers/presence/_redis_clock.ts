/**
 * Redis's clock, as presence reads it from one process: every process scores its connections'
 * expiry in Redis, and sweeps what expired, so they must agree on the time. A process whose own
 * clock was minutes ahead removed everyone else's connections at each sweep (users flickered
 * offline and back), and one that died with its clock ahead left ghosts for as long. So the time
 * is Redis's (`TIME`), read at each heartbeat, and carried between reads by this process's
 * monotonic clock: a step of the wall clock (a resumed VM, `chronyc makestep`) moves nothing.
 */

/** Runs `TIME` on the presence keys' node; resolves its `[seconds, microseconds]`. */
export type ReadRedisTime = () => Promise<unknown>;

/** Redis's time in ms, read with {@linkcode RedisClock.sync} and carried by `performance.now()`. */
export class RedisClock {
  #read: ReadRedisTime;
  /** Redis's time minus `performance.now()`, in ms; `null` until the first read. */
  #offset: number | null = null;

  /** A clock that reads Redis's time with `read`. */
  constructor(read: ReadRedisTime) {
    this.#read = read;
  }

  /** Redis's time now, in ms since the epoch (this process's own until the first read). */
  now(): number {
    return this.#offset === null ? Date.now() : performance.now() + this.#offset;
  }

  /** Reads Redis's time again; a failed read keeps the last one (Redis may be away). */
  async sync(): Promise<void> {
    const sent = performance.now();
    let reply: unknown;
    try {
      reply = await this.#read();
    } catch {
      return;
    }
    const [seconds, micros] = Array.isArray(reply) ? reply.map(Number) : [NaN, NaN];
    if (!Number.isFinite(seconds) || !Number.isFinite(micros)) return;
    // Redis read its clock about halfway through the round trip.
    const midway = (sent + performance.now()) / 2;
    this.#offset = seconds * 1000 + micros / 1000 - midway;
  }
}
