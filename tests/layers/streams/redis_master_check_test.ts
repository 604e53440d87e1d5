/**
 * The master check needs `INFO`, which the common hardening ACL (`+@all -@dangerous`) takes
 * away: without it a failover, or a restart from an older snapshot, gives lost messages' offsets
 * to new ones while clients are told their recovery was complete. So streams that check refuse
 * to open for such a user, say so at run time when the ACL changes later, and log each new
 * epoch a master change gives a stream; with the check turned off they warn once at open.
 */
import { assert, assertEquals, assertMatch, assertNotEquals, assertRejects } from "@std/assert";
import { createClient } from "redis";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { redisAvailability, type RedisServer, startRedisServer } from "../../_support/redis.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { runServerToExit, startServerProcess } from "../../scale/_process.ts";

const { available } = await redisAvailability({ privateServer: true });

// What the refusal, and the run-time warning, must tell: the consequence and both ways out.
const ADVICE =
  /run INFO \(an ACL without @dangerous\).*clients are told their recovery was complete.*ACL SETUSER <user> \+info.*REDIS_MASTER_CHECK=off/;

/**
 * The URL of user `app` on `server`, made by an admin connection with everything but the
 * `@dangerous` commands, and then `extra` (`+info`).
 */
async function limitedUser(server: RedisServer, ...extra: string[]): Promise<string> {
  await adminCommand(server, ["ACL", "SETUSER", "app", "on", ">app-secret", "~*", "&*", "+@all"]);
  await adminCommand(server, ["ACL", "SETUSER", "app", "-@dangerous", ...extra]);
  return `redis://app:app-secret@127.0.0.1:${server.port}`;
}

async function adminCommand(server: RedisServer, command: string[]): Promise<unknown> {
  const admin = createClient({ url: server.url });
  await admin.connect();
  try {
    return await admin.sendCommand(command);
  } finally {
    await admin.close();
  }
}

Deno.test({
  name: "redis streams refuse to open for a Redis user that may not run INFO, saying why and how",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis);
    await assertRejects(
      () => RedisStreams.open({ url, prefix: "limited", publishInScript: true }),
      Error,
      "may not run INFO (an ACL without @dangerous)",
    );
    const error = await RedisStreams.open({ url, prefix: "limited", publishInScript: true })
      .catch((error) => error as Error);
    assertMatch((error as Error).message, ADVICE);
  },
});

Deno.test({
  name: "a user with INFO and EVALSHA but not EVAL opens checked streams, as it published before",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis, "+info", "-eval");
    const streams = await RedisStreams.open({ url, prefix: "evalsha", publishInScript: true });
    try {
      assertEquals((await streams.publish("room.a", { type: "t" })).offset, 1);
    } finally {
      await streams.close();
    }
  },
});

Deno.test({
  name: "a probe Redis refuses outright is named as the master check's, with the server",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis, "+info", "-evalsha", "-eval");
    await assertRejects(
      () => RedisStreams.open({ url, prefix: "noscripts", publishInScript: true }),
      Error,
      `Could not check whether the Redis user at redis://app:***@127.0.0.1:${redis.port} may run INFO`,
    );
  },
});

Deno.test({
  name: "redis streams with the check turned off open for that user, and warn once what it costs",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis);
    using captured = new CapturedLog();
    const streams = await RedisStreams.open({
      url,
      prefix: "unchecked",
      publishInScript: true,
      checksMaster: false,
    });
    try {
      const first = await streams.publish("room.a", { type: "t", n: 1 });
      const second = await streams.publish("room.a", { type: "t", n: 2 });
      assertEquals([second.epoch, second.offset], [first.epoch, 2]);
      const warnings = captured.lines.filter((line) => / WARN /.test(line));
      assertEquals(warnings.length, 1, warnings.join("\n"));
      assertMatch(warnings[0], /do not check their master \(REDIS_MASTER_CHECK=off\): after a/);
    } finally {
      await streams.close();
    }
  },
});

Deno.test({
  name: "redis streams whose user loses INFO after open say so once, however many publishes",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis, "+info");
    const streams = await RedisStreams.open({ url, prefix: "revoked", publishInScript: true });
    using captured = new CapturedLog();
    try {
      await streams.publish("room.a", { type: "t", n: 1 });
      await adminCommand(redis, ["ACL", "SETUSER", "app", "-info"]);
      for (let n = 2; n <= 4; n++) await streams.publish("room.a", { type: "t", n });
      await streams.publish("room.b", { type: "t", n: 1 });
      const warnings = captured.lines.filter((line) => /INFO/.test(line));
      assertEquals(warnings.length, 1, captured.lines.join("\n"));
      assertMatch(warnings[0], / WARN .*may no longer run INFO/);
      assertMatch(warnings[0], ADVICE);
    } finally {
      await streams.close();
    }
  },
});

Deno.test({
  name:
    "redis streams of a user granted +info open, and each stream's new epoch after a failover is logged once",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    await using replica = await startRedisServer();
    // ACLs are not replicated: each server has its own user.
    const options = { prefix: "granted", publishInScript: true };
    const onMaster = await RedisStreams.open({
      url: await limitedUser(master, "+info"),
      ...options,
    });
    const onNew = await RedisStreams.open({ url: await limitedUser(replica, "+info"), ...options });
    try {
      await adminCommand(master, ["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
      await adminCommand(replica, ["CONFIG", "SET", "repl-diskless-load", "on-empty-db"]);
      await adminCommand(replica, ["REPLICAOF", "127.0.0.1", String(master.port)]);
      const first = await onMaster.publish("room.a", { type: "t", n: 1 });
      await onMaster.publish("room.a", { type: "t", n: 2 });
      await waitForReplica(replica, "granted:stream-meta:room.a", 2);
      await adminCommand(replica, ["REPLICAOF", "NO", "ONE"]);
      using captured = new CapturedLog();
      const next = await onNew.publish("room.a", { type: "t", n: 3 });
      assertNotEquals(next.epoch, first.epoch);
      await onNew.publish("room.a", { type: "t", n: 4 });
      const changes = captured.lines.filter((line) => /new epoch/.test(line));
      assertEquals(changes, [changes[0]], captured.lines.join("\n"));
      assertMatch(
        changes[0],
        / WARN Stream of "room\.a" took a new epoch after a master change \(a failover, a restart, or its Cluster slot moved\): offsets after 2 written to the old master may be lost; clients past 2 are told their recovery is incomplete/,
      );
    } finally {
      await onMaster.close();
      await onNew.close();
    }
  },
});

Deno.test({
  name: "a server whose Redis user may not run INFO does not start, and says why on one line",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis);
    const { code, output } = await runServerToExit({ LAYER: "redis", REDIS_URL: url });
    assertNotEquals(code, 0);
    const line = output.split("\n").find((line) => line.startsWith("Could not start:"));
    assertMatch(line ?? output, /^Could not start: The Redis user at redis:\/\/app:\*\*\*@/);
    assertMatch(line!, ADVICE);
    assert(!/^\s+at /m.test(output), `a stack trace, not one line:\n${output}`);
  },
});

Deno.test({
  name:
    "a server with REDIS_MASTER_CHECK=off starts for that user, with one warning of what it costs",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const url = await limitedUser(redis);
    const env = { LAYER: "redis", REDIS_URL: url, REDIS_MASTER_CHECK: "off" };
    await using server = await startServerProcess(env);
    const warnings = server.output().split("\n").filter((line) => /master/.test(line));
    assertEquals(warnings.length, 1, server.output());
    assertMatch(warnings[0], / WARN Streams on Redis at .* do not check their master/);
  },
});

/** Waits until the replica has the stream's record `key` up to `offset` (replication is async). */
async function waitForReplica(replica: RedisServer, key: string, offset: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Number(await adminCommand(replica, ["HGET", key, "offset"])) < offset) {
    if (Date.now() > deadline) throw new Error("The replica never caught up");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
