/**
 * The streams' conformance suite on a real 3-master Redis Cluster and on a master behind three
 * Sentinels: the keys of a group live in its layer channel's slot, the script publishes with
 * SPUBLISH there, and a node that lacks the script is sent its text.
 */
import { assertEquals } from "@std/assert";
import { streamConformance } from "./conformance.ts";
import { RedisLayer } from "../../../layers/redis.ts";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { closeRedis, connectRedis, type RedisForm } from "../../../storage/redis_connection.ts";
import {
  requireTopologies,
  startRedisCluster,
  startRedisSentinel,
} from "../../_support/redis_topologies.ts";
import { uniquePrefix } from "../../_support/redis.ts";
import { appendFromOutside } from "../../../server/backends.ts";
import { DEFAULT_CONFIG } from "../../../server/config.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
const available = await requireTopologies();
const cluster = available ? await startRedisCluster() : null;
const sentinel = available ? await startRedisSentinel() : null;
globalThis.addEventListener("unload", () => {
  cluster?.killNow();
  sentinel?.killNow();
});

/** What a Redis restarted empty has lost, on every master given: the keys and the scripts. */
async function flush(ports: number[]): Promise<void> {
  for (const port of ports) {
    const client = await connectRedis(`redis://127.0.0.1:${port}`, { name: "flush" });
    try {
      await client.sendCommand(["FLUSHALL"]);
      await client.sendCommand(["SCRIPT", "FLUSH"]);
    } finally {
      await closeRedis(client);
    }
  }
}

function world(form: RedisForm | undefined, masters: () => Promise<number[]>) {
  return () => {
    const prefix = uniquePrefix("streams-form");
    return Promise.resolve({
      open: async () => {
        const layer = await RedisLayer.open({ form, prefix });
        return {
          layer,
          streams: await RedisStreams.open({ form, prefix, layer, publishInScript: true }),
        };
      },
      lose: async () => await flush(await masters()),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    });
  };
}

streamConformance(
  "redis streams on a cluster",
  world(cluster?.form, () => Promise.resolve(cluster!.ports)),
  { shared: true, pagesReads: true, ignore: !available },
);

streamConformance(
  "redis streams through sentinels",
  world(sentinel?.form, async () => [await sentinel!.masterPort()]),
  { shared: true, pagesReads: true, ignore: !available },
);

/** Flushes the masters' scripts and statistics, runs `publish`, then reads their NOSCRIPT count. */
async function noscriptAnswers(ports: number[], publish: () => Promise<void>): Promise<number> {
  const run = async (command: string[]) => {
    const answers: string[] = [];
    for (const port of ports) {
      const client = await connectRedis(`redis://127.0.0.1:${port}`, { name: "stats" });
      try {
        answers.push(String(await client.sendCommand(command)));
      } finally {
        await closeRedis(client);
      }
    }
    return answers;
  };
  await run(["SCRIPT", "FLUSH"]);
  await run(["CONFIG", "RESETSTAT"]);
  await publish();
  const stats = await run(["INFO", "errorstats"]);
  return stats.reduce(
    (sum, text) => sum + Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(text)?.[1] ?? 0),
    0,
  );
}

// One sender's publishes as the chat makes them: 20 in flight together, then two more, each in a
// later turn (the next frames). Resolves with the order the stream kept them in.
async function publishInFlight(streams: RedisStreams, group: string): Promise<number[]> {
  const sent: Promise<unknown>[] = [];
  const publish = (n: number) => sent.push(streams.publish(group, { type: "t", n }));
  for (let n = 1; n <= 20; n++) publish(n);
  await new Promise((resolve) => setTimeout(resolve, 1));
  publish(21);
  await new Promise((resolve) => setTimeout(resolve, 1));
  publish(22);
  await Promise.all(sent);
  return (await streams.latest(group, 50)).events.map((event) => Number(event.n));
}

for (const kind of ["cluster", "sentinel"] as const) {
  Deno.test({
    name: `on a ${kind}, a master without the scripts (a replica just promoted) keeps one ` +
      "sender's order, and is never answered NOSCRIPT",
    ignore: !available,
    fn: async () => {
      const form = kind === "cluster" ? cluster!.form : sentinel!.form;
      const masters = kind === "cluster"
        ? () => Promise.resolve(cluster!.ports)
        : async () => [await sentinel!.masterPort()];
      const prefix = uniquePrefix("in-order");
      const layer = await RedisLayer.open({ form, prefix });
      const streams = await RedisStreams.open({ form, prefix, layer, publishInScript: true });
      try {
        // `SCRIPT LOAD` is not replicated: a promoted replica lacks the scripts, as a flushed
        // master does. Several groups: the Cluster's masters each get some.
        let order: number[][] = [];
        const noscript = await noscriptAnswers(await masters(), async () => {
          order = await Promise.all(
            ["a", "b", "c"].map((room) => publishInFlight(streams, `room-${room}`)),
          );
        });
        const sent = Array.from({ length: 22 }, (_, i) => i + 1);
        for (const kept of order) assertEquals(kept, sent);
        assertEquals(noscript, 0);
      } finally {
        await streams.close();
        await layer.close();
      }
    },
  });
}

for (const kind of ["cluster", "sentinel"] as const) {
  Deno.test({
    name: `a message sent from outside (deno task send --room) goes to the ${kind}'s streams`,
    ignore: !available,
    fn: async () => {
      const form = kind === "cluster" ? cluster!.form : sentinel!.form;
      const prefix = uniquePrefix("outside");
      // The URL names no server: the form alone says where the streams are.
      const config = {
        ...DEFAULT_CONFIG,
        layer: "redis" as const,
        redisForm: form,
        redisPrefix: prefix,
        redisUrl: "redis://127.0.0.1:1",
      };
      const appended = await appendFromOutside(config, "room-outside", { type: "t", n: 1 });
      const layer = await RedisLayer.open({ form, prefix });
      const streams = await RedisStreams.open({ form, prefix, layer, publishInScript: true });
      try {
        const read = await streams.latest("room-outside", 10);
        assertEquals(read.events.map((event) => [event.n, event.offset]), [[1, appended!.offset]]);
      } finally {
        await streams.close();
        await layer.close();
      }
    },
  });
}
