/**
 * Behind Sentinels, a failover may lose what the old master took in its last moments, and the
 * new master would give those offsets again. Streams that check their master give a stream
 * written on another master a new epoch, so that no reader takes the new events for the old.
 * The promotion is done by hand here (`REPLICAOF NO ONE`), as Sentinels do it.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { createClient } from "redis";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { redisAvailability, type RedisServer, startRedisServer } from "../../_support/redis.ts";
import { Communicator, createTestServices } from "../../../testing.ts";
import { type Consumer, StreamFollowing } from "../../../mod.ts";

const { available } = await redisAvailability({ privateServer: true });

Deno.test({
  name: "redis streams: a stream written on a promoted replica takes a new epoch",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    await using replica = await startRedisServer();
    await using pair = await replicated(master, replica, "failover");
    const { onMaster, onNew, admin } = pair;
    const first = await onMaster.publish("room.a", { type: "t", n: 1 });
    const second = await onMaster.publish("room.a", { type: "t", n: 2 });
    assertEquals([first.epoch, second.offset], [second.epoch, 2]);
    await waitForReplica(admin, "failover:stream-meta:room.a", 2);
    // The replica is promoted; the old master still takes a write, which will be lost.
    await admin.sendCommand(["REPLICAOF", "NO", "ONE"]);
    const lost = await onMaster.publish("room.a", { type: "t", n: 3 });
    assertEquals([lost.epoch, lost.offset], [first.epoch, 3]);

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
      // Every event read is the stream's epoch's, the ones written before the change too.
      assertEquals(goesOn.events.map((e) => e.epoch), missed.map(() => next.epoch));
    }
    const history = await onNew.latest("room.a", 10);
    assertEquals(history.events.map((e) => [e.n, e.epoch]), [[1, next.epoch], [2, next.epoch], [
      4,
      next.epoch,
    ]]);
    // And the master the stream is now written on keeps its epoch.
    assertEquals((await onNew.publish("room.a", { type: "t", n: 5 })).epoch, next.epoch);
  },
});

Deno.test({
  name:
    "redis streams: a Redis restarted from a snapshot older than its last writes gives no offset twice under one epoch",
  ignore: !available,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "redis-snapshot-" });
    await using redis = await startRedisServer({ dir });
    // The default options of one server by URL, as `LAYER=redis` opens them.
    const open = () => RedisStreams.open({ url: redis.url, prefix: "snap", publishInScript: true });
    const streams = await open();
    try {
      for (let n = 1; n <= 3; n++) await streams.publish("room.a", { type: "t", n });
      const admin = createClient({ url: redis.url });
      await admin.connect();
      await admin.sendCommand(["SAVE"]);
      await admin.quit();
      let seen = { epoch: "", offset: 0 };
      for (let n = 4; n <= 6; n++) seen = await streams.publish("room.a", { type: "t", n });
      // A crash: it comes back with the snapshot, without 4 to 6.
      await redis.restart();
      const after = await retrying(() => streams.publish("room.a", { type: "t", n: 7 }));
      assertEquals(after.offset, 4);
      assertNotEquals(after.epoch, seen.epoch, "offset 4 again, under the same epoch");
      // The client that saw 6 is told it cannot recover; one that saw only 3 goes on.
      const lost = await streams.since("room.a", seen);
      assertEquals([lost.complete, lost.epoch], [false, after.epoch]);
      const kept = await streams.since("room.a", { epoch: seen.epoch, offset: 3 });
      assertEquals([kept.complete, kept.events.map((e) => e.n)], [true, [7]]);
    } finally {
      await streams.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// `call` once Redis answers again (the connection comes back by itself after a restart).
async function retrying<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

Deno.test({
  name: "redis streams: sockets reading a gap across a master change that lost nothing go on",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    await using replica = await startRedisServer();
    await using pair = await replicated(master, replica, "gap");
    const { onMaster, admin } = pair;
    await using services = await createTestServices();
    const following = new StreamFollowing(pair.onNew);
    const consumer: Consumer = (conn) => {
      const follower = following.follow(conn, "notes");
      return {
        async connect() {
          await conn.groupAdd("notes");
          await follower.enter();
        },
        events: { note: (event) => follower.deliver(event) },
      };
    };
    await onMaster.publish("notes", { type: "note", text: "n1" });
    // The sockets read from the replica, where a stream without a record could not be made.
    await waitForReplica(admin, "gap:stream-meta:notes", 1);
    const open = async (query: string) => {
      const comm = new Communicator({ consumer, services }, `/ws/notes/${query}`);
      assert((await comm.connect()).accepted);
      return comm;
    };
    const stream = await open("?stream=1");
    const plain = await open("");
    for (const comm of [stream, plain]) await drain(comm);
    const n2 = await onMaster.publish("notes", { type: "note", text: "n2" });
    const n3 = await onMaster.publish("notes", { type: "note", text: "n3" });
    await waitForReplica(admin, "gap:stream-meta:notes", 3);
    await admin.sendCommand(["REPLICAOF", "NO", "ONE"]);
    const n4 = await pair.onNew.publish("notes", { type: "note", text: "n4" });
    // n3 reaches this process before n2 (two processes' publishes crossed), then n4.
    for (const [published, text] of [[n3, "n3"], [n2, "n2"], [n4, "n4"]] as const) {
      await services.layer.groupSend("notes", { type: "note", text, ...published });
    }
    for (const comm of [stream, plain]) {
      const frames = await drain(comm);
      assert(!frames.some((f) => f.complete === false), "told of a loss that did not happen");
      assertEquals(frames.filter((f) => f.text).map((f) => f.text), ["n2", "n3", "n4"]);
      await comm.disconnect();
    }
  },
});

Deno.test({
  name: "redis streams: with the check turned off, a publish asks Redis nothing more",
  ignore: !available,
  fn: async () => {
    await using server = await startRedisServer();
    const streams = await RedisStreams.open({
      url: server.url,
      prefix: "plain",
      publishInScript: true,
      checksMaster: false,
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

/** Waits until the replica has the stream's record `key` up to `offset` (replication is async). */
async function waitForReplica(admin: ReturnType<typeof createClient>, key: string, offset: number) {
  const deadline = Date.now() + 10_000;
  while (Number(await admin.hGet(key, "offset")) < offset) {
    assert(Date.now() < deadline, "the replica never caught up");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A master and its replica, with streams that check their master on each. */
async function replicated(master: RedisServer, replica: RedisServer, prefix: string) {
  const admin = createClient({ url: replica.url });
  await admin.connect();
  const masterAdmin = createClient({ url: master.url });
  await masterAdmin.connect();
  await masterAdmin.sendCommand(["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
  await admin.sendCommand(["CONFIG", "SET", "repl-diskless-load", "on-empty-db"]);
  await admin.sendCommand(["REPLICAOF", "127.0.0.1", String(master.port)]);
  const options = { prefix, publishInScript: true, checksMaster: true };
  const onMaster = await RedisStreams.open({ url: master.url, ...options });
  const onNew = await RedisStreams.open({ url: replica.url, ...options });
  return {
    admin,
    onMaster,
    onNew,
    async [Symbol.asyncDispose]() {
      await onMaster.close();
      await onNew.close();
      await admin.close();
      await masterAdmin.close();
    },
  };
}

/** Every frame until none comes for a moment. */
async function drain(comm: Communicator): Promise<Record<string, unknown>[]> {
  const frames = [];
  while (!(await comm.receiveNothing(200))) frames.push(await comm.receiveJson());
  return frames;
}
