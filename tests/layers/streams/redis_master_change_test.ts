/**
 * Behind Sentinels, a failover may lose what the old master took in its last moments, and the
 * new master would give those offsets again. Streams that check their master give a stream
 * written on another master a new epoch, so that no reader takes the new events for the old.
 * The promotion is done by hand here (`REPLICAOF NO ONE`), as Sentinels do it.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { createClient } from "redis";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { redisAvailability, startRedisServer } from "../../_support/redis.ts";

const { available } = await redisAvailability({ privateServer: true });

Deno.test({
  name: "redis streams: a stream written on a promoted replica takes a new epoch",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    await using replica = await startRedisServer();
    const admin = createClient({ url: replica.url });
    await admin.connect();
    const masterAdmin = createClient({ url: master.url });
    await masterAdmin.connect();
    try {
      // At once: by default a master waits 5 s for more replicas before it syncs one.
      await masterAdmin.sendCommand(["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
      // And from the socket: a replica would otherwise leave the master's data in a dump.rdb
      // in the working directory, for the next redis-server started there to load.
      await admin.sendCommand(["CONFIG", "SET", "repl-diskless-load", "on-empty-db"]);
      await admin.sendCommand(["REPLICAOF", "127.0.0.1", String(master.port)]);
      const options = { prefix: "failover", publishInScript: true, checksMaster: true };
      const onMaster = await RedisStreams.open({ url: master.url, ...options });
      const first = await onMaster.publish("room.a", { type: "t", n: 1 });
      const second = await onMaster.publish("room.a", { type: "t", n: 2 });
      assertEquals([first.epoch, second.offset], [second.epoch, 2]);
      await waitForReplica(admin, 2);
      // The replica is promoted; the old master still takes a write, which will be lost.
      await admin.sendCommand(["REPLICAOF", "NO", "ONE"]);
      const lost = await onMaster.publish("room.a", { type: "t", n: 3 });
      assertEquals([lost.epoch, lost.offset], [first.epoch, 3]);
      await onMaster.close();

      const onNew = await RedisStreams.open({ url: replica.url, ...options });
      try {
        const next = await onNew.publish("room.a", { type: "t", n: 4 });
        assertNotEquals(next.epoch, first.epoch, "offset 3 again, under the same epoch");
        assertEquals(next.offset, 3);
        // Whoever saw the lost offset 3 is told, as after any lost history.
        const read = await onNew.since("room.a", { epoch: first.epoch, offset: 3 });
        assertEquals([read.complete, read.epoch], [false, next.epoch]);
        // Whoever saw only what the new master has goes on, with nothing lost.
        const seen: [number, number[]][] = [[2, [4]], [1, [2, 4]]];
        for (const [offset, missed] of seen) {
          const goesOn = await onNew.since("room.a", { epoch: first.epoch, offset });
          assertEquals([goesOn.complete, goesOn.epoch, goesOn.offset], [true, next.epoch, 3]);
          assertEquals(goesOn.events.map((e) => e.n), missed);
        }
        // And the master the stream is now written on keeps its epoch.
        assertEquals((await onNew.publish("room.a", { type: "t", n: 5 })).epoch, next.epoch);
      } finally {
        await onNew.close();
      }
    } finally {
      await admin.close();
      await masterAdmin.close();
    }
  },
});

Deno.test({
  name: "redis streams: without the check, a publish asks Redis nothing more",
  ignore: !available,
  fn: async () => {
    await using server = await startRedisServer();
    const streams = await RedisStreams.open({
      url: server.url,
      prefix: "plain",
      publishInScript: true,
    });
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      await streams.publish("room.a", { type: "t" });
      const meta = await client.hGetAll("plain:stream-meta:room.a");
      assert(!("master" in meta), "the master was recorded without the check");
    } finally {
      await client.close();
      await streams.close();
    }
  },
});

/** Waits until the replica has the stream's record up to `offset` (replication is async). */
async function waitForReplica(admin: ReturnType<typeof createClient>, offset: number) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const meta = await admin.hGet("failover:stream-meta:room.a", "offset");
    if (Number(meta) >= offset) return;
    assert(Date.now() < deadline, "the replica never caught up");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
