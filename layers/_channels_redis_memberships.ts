/**
 * This process's group memberships in a channels_redis layer: written to the groups' sorted
 * sets in Redis (`group_add`, `group_discard`) and kept here both ways, so that a reconnect can
 * write them back (Redis may have restarted empty) and send the discards Redis did not hear,
 * and a closing process can leave its groups.
 *
 * A membership's score is the time it was written, and `group_send` drops those older than
 * `group_expiry` (a day). Django Channels lets a consumer connected that long fall out of its
 * groups; a server's own channels (presence, the admin page) are connected for as long as the
 * process runs, so this process renews its memberships every quarter of `group_expiry`, with
 * `ZADD XX`: a membership another process discarded (Django's `group_discard`) stays out.
 *
 * A discard Redis did not hear is sent on reconnect, unless the membership never reached Redis
 * (joined and left while it was away: a socket opened and closed in an outage). At most
 * `MAX_UNSENT_DISCARDS` wait; past that the oldest are dropped, with a warning: such a
 * membership stays in Redis until `group_expiry`, as a dead process's do.
 */
import { type RedisClient, withTimeout } from "../storage/redis_connection.ts";
import { groupKey } from "./_channels_redis_wire.ts";
import type { RedisCommands } from "./_channels_redis_commands.ts";
import type { Settings } from "./_channels_redis_settings.ts";
import { log } from "../telemetry/log.ts";

// The longest delay a timer takes (about 24.8 days); a longer one would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Discards kept for Redis's return; an outage under a stream of connections would grow them. */
export const MAX_UNSENT_DISCARDS = 10_000;

/** This process's memberships, here and in Redis. */
export class GroupMemberships {
  #redis: RedisCommands;
  #commands: RedisClient;
  #settings: Settings;
  #isClosed: () => boolean;
  /** This process's memberships both ways, written back to Redis on reconnect. */
  #members = new Map<string, Set<string>>();
  #groupsOf = new Map<string, Set<string>>();
  /** This process's memberships joined while Redis was away and not written since. */
  #unwritten = new Map<string, Set<string>>();
  /** Discards Redis did not hear (it was away), retried on reconnect; the oldest first. */
  #unsentDiscards = new Map<string, { group: string; channel: string }>();
  #maxUnsent: number;
  #droppedDiscards = 0;
  #renewal: ReturnType<typeof setInterval>;

  /** Writes through `redis`; `isClosed` says when a failed discard is no longer worth a retry. */
  constructor(
    redis: RedisCommands,
    isClosed: () => boolean,
    options: { maxUnsentDiscards?: number } = {},
  ) {
    this.#redis = redis;
    this.#commands = redis.client;
    this.#settings = redis.settings;
    this.#isClosed = isClosed;
    this.#maxUnsent = Math.max(1, options.maxUnsentDiscards ?? MAX_UNSENT_DISCARDS);
    const every = Math.min(this.#settings.groupExpiry * 250, MAX_TIMER_MS);
    this.#renewal = setInterval(() => void this.renew(), every);
    Deno.unrefTimer(this.#renewal); // a renewal never keeps a process alive
  }

  /** Writes every membership of this process again with the time as score (`ZADD XX`). */
  async renew(): Promise<void> {
    if (!this.#commands.isReady || this.#isClosed()) return; // rejoin renews once Redis is back
    const score = this.#redis.now();
    const writes = [...this.#members].flatMap(([group, channels]) => {
      const key = groupKey(this.#settings.prefix, group);
      const members = [...channels].map((value) => ({ score, value }));
      return [
        this.#commands.zAdd(key, members, { condition: "XX" }),
        this.#commands.expire(key, this.#settings.groupExpiry),
      ];
    });
    try {
      await this.#redis.run(Promise.all(writes));
    } catch (error) {
      log.warn(`Could not renew ${this.#members.size} group membership(s); retrying later`, error);
    }
  }

  /** How many groups this process's channels are in. */
  get groupCount(): number {
    return this.#members.size;
  }

  /** Discards waiting for Redis to come back. */
  get unsentDiscards(): number {
    return this.#unsentDiscards.size;
  }

  /** The groups a channel of this process is in. */
  groupsOf(channel: string): string[] {
    return [...this.#groupsOf.get(channel) ?? []];
  }

  /** Adds a channel to a group in Redis; a `local` one (this process's) is also kept here. */
  async add(group: string, channel: string, local: boolean): Promise<void> {
    // A discard not sent yet: the membership is still in Redis.
    const inRedis = this.#unsentDiscards.delete(discardKey(group, channel));
    if (local) {
      const joined = addTo(this.#members, group, channel);
      addTo(this.#groupsOf, channel, group);
      // Written now by #zadd, though the rejoin may not have run yet (the client is back before
      // its PING answered); else not written until the rejoin writes it back (#zadd skips it).
      if (this.#commands.isReady) removeFrom(this.#unwritten, group, channel);
      else if (joined && !inRedis) addTo(this.#unwritten, group, channel);
    }
    await this.#zadd(group, [channel]);
  }

  /** Leaves a group here and in Redis (`group_discard`); retried on reconnect if away. */
  async leave(group: string, channel: string): Promise<void> {
    removeFrom(this.#members, group, channel);
    removeFrom(this.#groupsOf, channel, group);
    // Never in Redis (unless Django added that very channel): nothing to take out of it.
    if (removeFrom(this.#unwritten, group, channel)) return;
    try {
      if (!this.#commands.isReady) throw new Error("Redis is away");
      await this.#redis.run(this.#commands.zRem(groupKey(this.#settings.prefix, group), channel));
    } catch {
      if (!this.#isClosed()) this.#keepUnsent(group, channel);
    }
  }

  // Kept for Redis's return; past the bound the oldest goes, ended by `group_expiry` instead.
  #keepUnsent(group: string, channel: string): void {
    this.#unsentDiscards.set(discardKey(group, channel), { group, channel });
    if (this.#unsentDiscards.size <= this.#maxUnsent) return;
    this.#unsentDiscards.delete(this.#unsentDiscards.keys().next().value!);
    if (this.#droppedDiscards++ === 0) {
      log.warn(
        `More than ${this.#maxUnsent} group discards wait for Redis; the oldest are dropped, ` +
          `and those memberships end after group_expiry (${this.#settings.groupExpiry} s)`,
      );
    }
  }

  /** Leaves every group in Redis at close, waiting at most a second. */
  async leaveAll(): Promise<void> {
    clearInterval(this.#renewal);
    // A closing process leaves its groups, or Django would keep queueing for it until expiry.
    if (this.#commands.isReady) {
      const leaving = [...this.#members].flatMap(([group, channels]) =>
        [...channels].map((channel) =>
          this.#commands.zRem(groupKey(this.#settings.prefix, group), channel)
        )
      );
      await withTimeout(Promise.all(leaving), 1000, "timeout").catch(() => {});
    }
  }

  /** After a reconnect: writes this process's memberships back, sends missed discards. */
  rejoin(): void {
    const discards = [...this.#unsentDiscards.values()];
    this.#unsentDiscards.clear();
    if (this.#droppedDiscards > 0) {
      log.warn(`${this.#droppedDiscards} group discard(s) were dropped while Redis was away`);
      this.#droppedDiscards = 0;
    }
    for (const { group, channel } of discards) void this.leave(group, channel);
    this.#unwritten.clear(); // written now (or tried: they may be in Redis)
    for (const [group, channels] of this.#members) void this.#zadd(group, [...channels]);
    log.info(`channels_redis layer rejoined ${this.#members.size} group(s)`);
  }

  /** Adds memberships with the time as score (`group_add`); repaired on reconnect if away. */
  async #zadd(group: string, channels: string[]): Promise<void> {
    if (!this.#commands.isReady) return; // written back by rejoin once Redis is back
    const key = groupKey(this.#settings.prefix, group);
    const score = this.#redis.now();
    try {
      await this.#redis.run(Promise.all([
        this.#commands.zAdd(key, channels.map((value) => ({ score, value }))),
        this.#commands.expire(key, this.#settings.groupExpiry),
      ]));
    } catch (error) {
      log.warn(`Could not add to group ${group}; retrying on reconnect`, error);
    }
  }
}

// Neither name may hold a newline (Channels' rule for both).
function discardKey(group: string, channel: string): string {
  return `${group}\n${channel}`;
}

/** Whether `value` was not there yet. */
function addTo(map: Map<string, Set<string>>, key: string, value: string): boolean {
  const values = map.get(key);
  if (values === undefined) map.set(key, new Set([value]));
  else if (values.has(value)) return false;
  else values.add(value);
  return true;
}

/** Whether `value` was there. */
function removeFrom(map: Map<string, Set<string>>, key: string, value: string): boolean {
  const values = map.get(key);
  if (!values?.delete(value)) return false;
  if (values.size === 0) map.delete(key);
  return true;
}
