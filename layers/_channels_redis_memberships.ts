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
 */
import { type RedisClient, withTimeout } from "../storage/redis_connection.ts";
import { groupKey } from "./_channels_redis_wire.ts";
import type { RedisCommands } from "./_channels_redis_commands.ts";
import type { Settings } from "./_channels_redis_settings.ts";
import { log } from "../telemetry/log.ts";

// The longest delay a timer takes (about 24.8 days); a longer one would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** This process's memberships, here and in Redis. */
export class GroupMemberships {
  #redis: RedisCommands;
  #commands: RedisClient;
  #settings: Settings;
  #isClosed: () => boolean;
  /** This process's memberships both ways, written back to Redis on reconnect. */
  #members = new Map<string, Set<string>>();
  #groupsOf = new Map<string, Set<string>>();
  /** Discards Redis did not hear (it was away), retried on reconnect. */
  #unsentDiscards = new Map<string, Set<string>>();
  #renewal: ReturnType<typeof setInterval>;

  /** Writes through `redis`; `isClosed` says when a failed discard is no longer worth a retry. */
  constructor(redis: RedisCommands, isClosed: () => boolean) {
    this.#redis = redis;
    this.#commands = redis.client;
    this.#settings = redis.settings;
    this.#isClosed = isClosed;
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

  /** The groups a channel of this process is in. */
  groupsOf(channel: string): string[] {
    return [...this.#groupsOf.get(channel) ?? []];
  }

  /** Adds a channel to a group in Redis; a `local` one (this process's) is also kept here. */
  async add(group: string, channel: string, local: boolean): Promise<void> {
    if (local) {
      addTo(this.#members, group, channel);
      addTo(this.#groupsOf, channel, group);
    }
    removeFrom(this.#unsentDiscards, group, channel);
    await this.#zadd(group, [channel]);
  }

  /** Leaves a group here and in Redis (`group_discard`); retried on reconnect if away. */
  async leave(group: string, channel: string): Promise<void> {
    removeFrom(this.#members, group, channel);
    removeFrom(this.#groupsOf, channel, group);
    try {
      if (!this.#commands.isReady) throw new Error("Redis is away");
      await this.#redis.run(this.#commands.zRem(groupKey(this.#settings.prefix, group), channel));
    } catch {
      if (!this.#isClosed()) addTo(this.#unsentDiscards, group, channel);
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
    const discards = [...this.#unsentDiscards];
    this.#unsentDiscards.clear();
    for (const [group, channels] of discards) {
      for (const channel of channels) void this.leave(group, channel);
    }
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

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const values = map.get(key);
  if (values) values.add(value);
  else map.set(key, new Set([value]));
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const values = map.get(key);
  if (values?.delete(value) && values.size === 0) map.delete(key);
}
