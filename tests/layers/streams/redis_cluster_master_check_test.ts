/**
 * On a Cluster the master check's ACL is each node's own: a master whose user may not run INFO
 * would publish its slots' messages without the check. So every master the slot map names is
 * asked at open, whichever node the seeds name, and the refusing ones are named; a master that
 * does not answer is named too, and not waited for beyond the streams' timeout.
 */
import { assert, assertEquals, assertMatch, assertNotEquals, assertRejects } from "@std/assert";
import { createClient } from "redis";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { openScriptRunner } from "../../../layers/streams/_script_runner.ts";
import { checkInfoAllowed } from "../../../layers/streams/_master_check.ts";
import { INFO_ALLOWED } from "../../../layers/streams/_redis_stream_scripts.ts";
import { describeRedisForm, type RedisForm } from "../../../storage/redis_connection.ts";
import { requireTopologies, startRedisCluster } from "../../_support/redis_topologies.ts";
import { uniquePrefix } from "../../_support/redis.ts";
import { runServerToExit, startServerProcess } from "../../scale/_process.ts";
import { groupChannel } from "../../../layers/redis_wire.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
const available = await requireTopologies();
const cluster = available ? await startRedisCluster() : null;
globalThis.addEventListener("unload", () => cluster?.killNow());

// What the refusal must tell: the consequence and both ways out (as on one server).
const ADVICE =
  /run INFO \(an ACL without @dangerous\).*clients are told their recovery was complete.*ACL SETUSER <user> \+info.*REDIS_MASTER_CHECK=off/;

/** One command, as the default user, on the node at `port` only (ACLs are not shared). */
async function onNode(port: number, command: string[]): Promise<unknown> {
  const client = createClient({ socket: { host: "127.0.0.1", port } });
  await client.connect();
  try {
    return await client.sendCommand(command);
  } finally {
    await client.close();
  }
}

/** Runs `fn` while the default user of the node at `port` may not run INFO. */
async function withoutInfoOn(port: number, fn: () => Promise<void>): Promise<void> {
  await onNode(port, ["ACL", "SETUSER", "default", "-info"]);
  try {
    await fn();
  } finally {
    await onNode(port, ["ACL", "SETUSER", "default", "+info"]);
  }
}

// Seeded with the first master only: the refusing one is named by the cluster, not the seeds.
function seededByFirst(): { form: RedisForm; refusing: number } {
  const [first, second] = cluster!.ports;
  return {
    form: { kind: "cluster", nodes: [{ host: "127.0.0.1", port: first }] },
    refusing: second,
  };
}

Deno.test({
  name: "on a cluster, streams refuse to open when any one master may not run INFO, naming it",
  ignore: !available,
  fn: async () => {
    const { form, refusing } = seededByFirst();
    const open = () =>
      RedisStreams.open({ form, prefix: uniquePrefix("acl"), publishInScript: true });
    await withoutInfoOn(refusing, async () => {
      const error = await assertRejects(open, Error);
      assertMatch(
        error.message,
        new RegExp(
          `^The Redis user on master 127\\.0\\.0\\.1:${refusing} of ${describeRedisForm(form)} ` +
            "may not run INFO",
        ),
      );
      assertMatch(error.message, ADVICE);
    });
    // Every master allowed: the same cluster opens.
    const streams = await open();
    await streams.close();
  },
});

/** A group of `prefix` whose keys (its layer channel's slot) the master at `port` serves. */
async function groupServedBy(port: number, prefix: string): Promise<string> {
  const ranges = (await onNode(port, ["CLUSTER", "SLOTS"]) as [number, number, [string, number]][])
    .filter((range) => range[2][1] === port);
  for (let n = 0;; n++) {
    const group = `room.${n}`;
    const slot = Number(await onNode(port, ["CLUSTER", "KEYSLOT", groupChannel(prefix, group)]));
    if (ranges.some(([from, to]) => from <= slot && slot <= to)) return group;
  }
}

Deno.test({
  name: "on a cluster, a master whose user loses INFO after open is named in the one warning",
  ignore: !available,
  fn: async () => {
    const { form, refusing } = seededByFirst();
    const prefix = uniquePrefix("revoked");
    const streams = await RedisStreams.open({ form, prefix, publishInScript: true });
    const group = await groupServedBy(refusing, prefix);
    using captured = new CapturedLog();
    log.setLevel("warn");
    try {
      await withoutInfoOn(refusing, async () => {
        for (let n = 1; n <= 3; n++) await streams.publish(group, { type: "t", n });
        const warning = await captured.waitFor(/may no longer run INFO/);
        assertMatch(
          warning,
          new RegExp(` WARN The Redis user on master 127\\.0\\.0\\.1:${refusing} may no longer`),
        );
        assertMatch(warning, ADVICE);
        await streams.publish(group, { type: "t", n: 4 });
      });
      assertEquals(captured.lines.filter((line) => /INFO/.test(line)).length, 1);
    } finally {
      log.setLevel("error");
      await streams.close();
    }
  },
});

Deno.test({
  name: "on a cluster, a master that does not answer the INFO probe is named, within the timeout",
  ignore: !available,
  fn: async () => {
    const form: RedisForm = cluster!.form;
    const runner = await openScriptRunner(form, { timeoutMs: 300, scripts: [INFO_ALLOWED] });
    const away = cluster!.ports[2];
    const paused = cluster!.pause(away);
    try {
      await assertRejects(
        () => checkInfoAllowed(runner, describeRedisForm(form)),
        Error,
        `Could not check whether the Redis user on master 127.0.0.1:${away} of ` +
          `${describeRedisForm(form)} may run INFO (the streams' master check, ` +
          "REDIS_MASTER_CHECK): no answer in time",
      );
    } finally {
      paused.resume();
      await runner.close();
    }
  },
});

Deno.test({
  name: "a server on a cluster with one master that may not run INFO does not start, and names " +
    "that master; with every master allowed it starts",
  ignore: !available,
  fn: async () => {
    const { form, refusing } = seededByFirst();
    const env = {
      LAYER: "redis",
      REDIS_CLUSTER: describeRedisForm(form).replace(/^cluster /, ""),
    };
    await withoutInfoOn(refusing, async () => {
      const { code, output } = await runServerToExit(env);
      assertNotEquals(code, 0);
      const line = output.split("\n").find((line) => line.startsWith("Could not start:"));
      assertMatch(
        line ?? output,
        new RegExp(`^Could not start: The Redis user on master 127\\.0\\.0\\.1:${refusing} of`),
      );
      assertMatch(line!, ADVICE);
      assert(!/^\s+at /m.test(output), `a stack trace, not one line:\n${output}`);
    });
    await using _server = await startServerProcess(env);
  },
});
