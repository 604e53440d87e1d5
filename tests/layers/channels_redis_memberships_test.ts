/**
 * The channels_redis layer's discards while Redis is away: a socket that opens and closes in an
 * outage never reached Redis, so nothing of it waits for Redis's return (the discards grew with
 * the outage times the connection rate, then came as a burst of ZREMs); one that joined before
 * the outage is still taken out once Redis is back; and what waits is bounded.
 */
import { assert, assertEquals } from "@std/assert";
import { createClient } from "redis";
import { GroupMemberships } from "../../layers/_channels_redis_memberships.ts";
import { RedisCommands } from "../../layers/_channels_redis_commands.ts";
import { withDefaults } from "../../layers/_channels_redis_settings.ts";
import { closeRedis, connectRedis } from "../../storage/redis_connection.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("silent"); // the outage logs by design
const { available: privateServer } = await redisAvailability({ privateServer: true });

/** Memberships on a private Redis that keeps a snapshot, so a restart keeps what was saved. */
async function setUp(options: { maxUnsentDiscards?: number } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "redis-memberships-" });
  const server = await startRedisServer({ dir });
  const settings = withDefaults({ url: server.url, prefix: uniquePrefix("cr") });
  const ref: { memberships?: GroupMemberships } = {};
  // Wired as the layer wires it: a reconnect rejoins.
  const client = await connectRedis(server.url, {
    name: "test commands",
    onReconnect: () => ref.memberships?.rejoin(),
  });
  const memberships = ref.memberships = new GroupMemberships(
    new RedisCommands(client, settings),
    () => false,
    options,
  );
  const admin = createClient({ url: server.url });
  admin.on("error", () => {});
  await admin.connect();
  const key = (group: string) => `${settings.prefix}:group:${group}`;
  return {
    memberships,
    /** Snapshots Redis, then stops it; resolves once the layer's connection knows. */
    async outage(): Promise<void> {
      await admin.sendCommand(["SAVE"]);
      await server.stop();
      await until(() => !client.isReady, "the connection still ready");
    },
    restart: () => server.restart(),
    /** Waits until the group's members in Redis are `expected` (in any order). */
    async membersBecome(group: string, expected: string[]): Promise<void> {
      const deadline = Date.now() + 15_000;
      let members: string[] = [];
      while (Date.now() < deadline) {
        members = admin.isReady ? (await admin.zRange(key(group), 0, -1)).toSorted() : [];
        if (admin.isReady && members.join() === expected.toSorted().join()) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assertEquals(members, expected.toSorted());
    },
    async [Symbol.asyncDispose]() {
      await memberships.leaveAll();
      await closeRedis(client);
      await admin.close().catch(() => {});
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function until(done: () => boolean, failure: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!done()) {
    assert(Date.now() < deadline, failure);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test({
  name:
    "channels_redis memberships: sockets opened and closed while Redis is away leave no discard waiting; one joined before is discarded when it is back",
  ignore: !privateServer,
  fn: async () => {
    await using t = await setUp();
    const before = "specific.proc!before";
    await t.memberships.add("lobby", before, true);
    await t.outage();
    for (let i = 0; i < 500; i++) {
      const channel = `specific.proc!during${i}`;
      for (const group of ["lobby", `room${i}`]) await t.memberships.add(group, channel, true);
      for (const group of ["lobby", `room${i}`]) await t.memberships.leave(group, channel);
    }
    assertEquals(t.memberships.unsentDiscards, 0);
    await t.memberships.leave("lobby", before);
    assertEquals(t.memberships.unsentDiscards, 1);
    await t.restart(); // with the snapshot, `before` in it
    await t.membersBecome("lobby", []); // the discard, sent when the connection is back
    assertEquals(t.memberships.unsentDiscards, 0);
  },
});

Deno.test({
  name:
    "channels_redis memberships: past the bound the oldest discards are dropped, and those memberships stay until group_expiry",
  ignore: !privateServer,
  fn: async () => {
    await using t = await setUp({ maxUnsentDiscards: 3 });
    const channels = Array.from({ length: 5 }, (_, i) => `specific.proc!c${i}`);
    for (const channel of channels) await t.memberships.add("lobby", channel, true);
    await t.outage();
    for (const channel of channels) await t.memberships.leave("lobby", channel);
    assertEquals(t.memberships.unsentDiscards, 3);
    // Joined again before Redis is back: its discard is not sent.
    await t.memberships.add("lobby", channels[4], true);
    assertEquals(t.memberships.unsentDiscards, 2);
    await t.restart();
    await t.membersBecome("lobby", [channels[0], channels[1], channels[4]]);
    assertEquals(t.memberships.unsentDiscards, 0);
  },
});

// Redis's client is ready again before the connection's PING answered and `rejoin` ran: a join
// made then is written at once, so its leave must take it out (a fake client holds that moment).
Deno.test("a join written between the client's return and the rejoin is taken out by its leave", async () => {
  const settings = withDefaults({ url: "redis://127.0.0.1:1", prefix: "cr" });
  const inRedis = new Map<string, Set<string>>();
  const client = {
    isReady: false, // Redis is away
    zAdd(key: string, members: { value: string }[]) {
      const set = inRedis.get(key) ?? new Set<string>();
      for (const { value } of members) set.add(value);
      inRedis.set(key, set);
      return Promise.resolve(members.length);
    },
    zRem(key: string, value: string) {
      inRedis.get(key)?.delete(value);
      return Promise.resolve(1);
    },
    expire: () => Promise.resolve(1),
  };
  const redis = { client, settings, run: <T>(p: Promise<T>) => p, now: () => Date.now() };
  const memberships = new GroupMemberships(redis as never, () => false);
  const key = `${settings.prefix}:group:lobby`;
  try {
    await memberships.add("lobby", "specific.p!c", true); // not written: Redis is away
    client.isReady = true; // back, its PING not answered yet
    await memberships.add("lobby", "specific.p!c", true); // the same join again: written
    assertEquals([...inRedis.get(key)!], ["specific.p!c"]);
    await memberships.leave("lobby", "specific.p!c"); // the socket closes
    memberships.rejoin(); // the PING answered
    assertEquals([...inRedis.get(key)!], [], "the closed socket is still a member in Redis");
  } finally {
    await memberships.leaveAll();
  }
});
