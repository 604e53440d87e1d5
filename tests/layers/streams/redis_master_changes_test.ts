/**
 * A stream remembers its last master changes (`_master_changes.ts`), not only the last one: a
 * client away across two failovers, or a failover then a slot move, goes on when nothing it saw
 * was lost. The first test promotes replicas by hand (`REPLICAOF NO ONE`), as Sentinels do; the
 * others make a change as a new master finds the record: written under another master's id
 * (`master`), and, for a failover that lost writes, without its last entries.
 */
import { assertEquals } from "@std/assert";
import { createClient } from "redis";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { REMEMBERED_MASTER_CHANGES } from "../../../layers/streams/_master_changes.ts";
import { redisAvailability, type RedisServer, startRedisServer } from "../../_support/redis.ts";

const { available } = await redisAvailability({ privateServer: true });

type Admin = ReturnType<typeof createClient>;

Deno.test({
  name: "redis streams: a client away across two failovers that lost nothing it saw goes on",
  ignore: !available,
  fn: async () => {
    // A master, its replica, and that replica's replica: each promoted in turn.
    await using first = await startRedisServer();
    await using second = await startRedisServer();
    await using third = await startRedisServer();
    await using admins = await adminsOf([first, second, third]);
    const [onFirst, onSecond, onThird] = admins.streams;
    await admins.replicate(1, first);
    await admins.replicate(2, second);
    const n1 = await onFirst.publish("room.a", { type: "t", n: 1 });
    await onFirst.publish("room.a", { type: "t", n: 2 });
    await waitForOffset(admins.clients[2], "twice:stream-meta:room.a", 2);
    await admins.clients[1].sendCommand(["REPLICAOF", "NO", "ONE"]);
    // The old master takes one more write, which the failover loses.
    await onFirst.publish("room.a", { type: "t", n: 0 });
    const n3 = await onSecond.publish("room.a", { type: "t", n: 3 });
    await waitForOffset(admins.clients[2], "twice:stream-meta:room.a", 3);
    await admins.clients[2].sendCommand(["REPLICAOF", "NO", "ONE"]);
    const n4 = await onThird.publish("room.a", { type: "t", n: 4 });
    assertEquals(new Set([n1.epoch, n3.epoch, n4.epoch]).size, 3, "two changes, two new epochs");

    const missed: [number, number[]][] = [[0, [1, 2, 3, 4]], [1, [2, 3, 4]], [2, [3, 4]]];
    for (const [offset, ns] of missed) {
      const read = await onThird.since("room.a", { epoch: n1.epoch, offset });
      assertEquals([read.complete, read.epoch, read.offset], [true, n4.epoch, 4]);
      assertEquals(read.events.map((e) => e.n), ns);
      assertEquals(read.events.map((e) => e.offset), ns);
      assertEquals(read.events.map((e) => e.epoch), ns.map(() => n4.epoch));
    }
    const fromSecond = await onThird.since("room.a", n3);
    assertEquals([fromSecond.complete, fromSecond.events.map((e) => e.n)], [true, [4]]);
    // Whoever saw the lost write (offset 3 on the first master) is told.
    const lost = await onThird.since("room.a", { epoch: n1.epoch, offset: 3 });
    assertEquals([lost.complete, lost.epoch], [false, n4.epoch]);
  },
});

Deno.test({
  name: "redis streams: a position past what any later master change kept is told",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    await using store = await storeOn(redis, "lost");
    const e0 = await store.publishUpTo(3);
    await store.masterChanged();
    const e1 = await store.publishUpTo(5); // offsets 4 and 5, under the second epoch
    // The next new master had the stream only up to 2: a lagging replica promoted.
    await store.masterChanged({ keptUpTo: 2 });
    const e2 = await store.publishUpTo(3);
    const told: [string, number][] = [[e0, 3], [e1, 3], [e1, 4], [e1, 5]];
    for (const [epoch, offset] of told) {
      const read = await store.streams.since("room.a", { epoch, offset });
      assertEquals([read.complete, read.epoch], [false, e2], `${epoch} ${offset}`);
    }
    // At or before every base since: nothing it saw was lost.
    for (const epoch of [e0, e1]) {
      const read = await store.streams.since("room.a", { epoch, offset: 2 });
      assertEquals([read.complete, read.epoch, read.offset], [true, e2, 3]);
      assertEquals(read.events.map((e) => [e.offset, e.epoch]), [[3, e2]]);
    }
    assertEquals(await store.record("changes"), `${e0} 3 ${e1} 2`);
  },
});

Deno.test({
  name: `redis streams remember the last ${REMEMBERED_MASTER_CHANGES} master changes, no more`,
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    await using store = await storeOn(redis, "bound");
    const epochs = [await store.publishUpTo(1)];
    for (let change = 1; change <= REMEMBERED_MASTER_CHANGES + 1; change++) {
      await store.masterChanged();
      epochs.push(await store.publishUpTo(change + 1));
    }
    const current = epochs.at(-1)!;
    // The oldest remembered epoch goes on; the one before it is forgotten, and is told.
    const oldest = await store.streams.since("room.a", { epoch: epochs[1], offset: 2 });
    assertEquals([oldest.complete, oldest.epoch], [true, current]);
    assertEquals(oldest.events.map((e) => e.offset), epochs.slice(2).map((_, i) => i + 3));
    const forgotten = await store.streams.since("room.a", { epoch: epochs[0], offset: 1 });
    assertEquals([forgotten.complete, forgotten.epoch], [false, current]);
    const changes = String(await store.record("changes")).split(" ");
    assertEquals(changes.length, 2 * REMEMBERED_MASTER_CHANGES);
  },
});

Deno.test({
  name: "redis streams read a record an older version wrote (only previous and base) as one change",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    await using store = await storeOn(redis, "old");
    const e0 = await store.publishUpTo(2);
    // An older version's master change: the epoch it left and its base, no `changes`.
    await store.admin.hSet(store.meta, { epoch: "old00001", previous: e0, base: "2" });
    assertEquals(await store.publishUpTo(3), "old00001");
    const goesOn = await store.streams.since("room.a", { epoch: e0, offset: 2 });
    assertEquals([goesOn.complete, goesOn.events.map((e) => e.offset)], [true, [3]]);
    // A change made now carries that one on.
    await store.masterChanged();
    const e2 = await store.publishUpTo(4);
    const across = await store.streams.since("room.a", { epoch: e0, offset: 1 });
    assertEquals([across.complete, across.epoch], [true, e2]);
    assertEquals(across.events.map((e) => e.offset), [2, 3, 4]);
    assertEquals(await store.record("changes"), `${e0} 2 old00001 3`);
    // An older version's change after this one's: `changes` no longer ends with it, and only
    // that change counts (one in between may be missing).
    await store.admin.hSet(store.meta, { epoch: "old00002", previous: e2, base: "4" });
    const stale = await store.streams.since("room.a", { epoch: e0, offset: 1 });
    assertEquals([stale.complete, stale.epoch], [false, "old00002"]);
    const last = await store.streams.since("room.a", { epoch: e2, offset: 4 });
    assertEquals([last.complete, last.events], [true, []]);
  },
});

Deno.test({
  name: "redis streams: a record without an epoch (lost) starts again without master changes",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    await using store = await storeOn(redis, "gone");
    const fields = { master: "f".repeat(40), previous: "gone0002", base: "5" };
    await store.admin.hSet(store.meta, { ...fields, changes: "gone0001 3 gone0002 5" });
    const read = await store.streams.since("room.a", { epoch: "gone0002", offset: 1 });
    assertEquals([read.complete, read.offset], [false, 0]);
    const left = await store.admin.hmGet(store.meta, ["master", "previous", "base", "changes"]);
    assertEquals(left, [null, null, null, null]);
  },
});

/** Streams on `redis` that check their master, with an admin client and the group's keys. */
async function storeOn(redis: RedisServer, prefix: string) {
  const options = { url: redis.url, prefix, publishInScript: true, checksMaster: true };
  const streams = await RedisStreams.open(options);
  const admin = createClient({ url: redis.url });
  await admin.connect();
  const meta = `${prefix}:stream-meta:room.a`;
  const stream = `${prefix}:stream:room.a`;
  return {
    streams,
    admin,
    meta,
    record: (field: string) => admin.hGet(meta, field),
    /** Publishes up to `offset`; the epoch of the last. */
    async publishUpTo(offset: number): Promise<string> {
      let epoch = "";
      while (Number(await admin.hGet(meta, "offset") ?? 0) < offset) {
        epoch = (await streams.publish("room.a", { type: "t" })).epoch;
      }
      return epoch;
    },
    /**
     * The record as a new master finds it: last written under another master's id; and when
     * it lost writes, without the entries after `keptUpTo`.
     */
    async masterChanged(options: { keptUpTo?: number } = {}): Promise<void> {
      await admin.hSet(meta, "master", "f".repeat(40));
      if (options.keptUpTo === undefined) return;
      const lost = await admin.xRange(stream, `(0-${options.keptUpTo}`, "+");
      for (const entry of lost) await admin.xDel(stream, entry.id);
      // As if never written: the stream's last id goes back too, so the offsets come again.
      await admin.sendCommand(["XSETID", stream, `0-${options.keptUpTo}`]);
      await admin.hSet(meta, "offset", String(options.keptUpTo));
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await streams.close();
      await admin.close();
    },
  };
}

/** An admin client and streams that check their master on each server. */
async function adminsOf(servers: RedisServer[]) {
  const clients: Admin[] = [];
  const streams: RedisStreams[] = [];
  for (const server of servers) {
    const client = createClient({ url: server.url });
    await client.connect();
    clients.push(client);
    const options = { prefix: "twice", publishInScript: true, checksMaster: true };
    streams.push(await RedisStreams.open({ url: server.url, ...options }));
  }
  return {
    clients,
    streams,
    /** Server `index` replicates `master`, at once and in full. */
    async replicate(index: number, master: RedisServer): Promise<void> {
      const masterIndex = servers.indexOf(master);
      await clients[masterIndex].sendCommand(["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
      await clients[index].sendCommand(["CONFIG", "SET", "repl-diskless-load", "on-empty-db"]);
      await clients[index].sendCommand(["REPLICAOF", "127.0.0.1", String(master.port)]);
    },
    async [Symbol.asyncDispose](): Promise<void> {
      for (const each of streams) await each.close();
      for (const client of clients) await client.close();
    },
  };
}

/** Waits until `client`'s server has the record `key` up to `offset` (replication is async). */
async function waitForOffset(client: Admin, key: string, offset: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Number(await client.hGet(key, "offset")) < offset) {
    if (Date.now() > deadline) throw new Error("The replica never caught up");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
