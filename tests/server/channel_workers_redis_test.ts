/**
 * Workers on the Redis layers: a worker takes only a few events ahead of the one it handles, so
 * the events it cannot take yet wait in Redis, where the queue's own capacity (1,000 with `redis`,
 * `capacity` with channels_redis) refuses more to their senders (`dropped: 1`) instead of the
 * worker dropping them unseen by the sender.
 */
import { assert, assertEquals } from "@std/assert";
import { channelNameRouter, type ChannelWorker, runChannelWorkers } from "../../mod.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { ChannelsRedisLayer } from "../../layers/channels_redis.ts";
import type { GroupLayer } from "../../layers/layer.ts";
import { createTestServices } from "../../testing.ts";
import { WORKER_PREFETCH } from "../../server/channel_workers.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { createClient } from "redis";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

const layers: [string, number, () => Promise<GroupLayer>][] = [
  ["redis", 1000, () => RedisLayer.open({ url: redis!.url, prefix: uniquePrefix("busy") })],
  [
    "channels_redis",
    100,
    () => ChannelsRedisLayer.open({ url: redis!.url, prefix: uniquePrefix("busy") }),
  ],
];

for (const [name, capacity, open] of layers) {
  Deno.test({
    name: `on ${name}, the sender of one event too many for a busy worker is told it was dropped`,
    ignore: !available,
    fn: async () => {
      const layer = await open();
      await using services = await createTestServices({}, { layer });
      let started!: () => void;
      const busy = new Promise<void>((resolve) => started = resolve);
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      let handled = 0;
      let expected = Infinity;
      let allHandled!: () => void;
      const done = new Promise<void>((resolve) => allHandled = resolve);
      const slow: ChannelWorker = () => ({
        events: {
          slow: () => (started(), released),
          job: () => void (++handled === expected && allHandled()),
        },
      });
      const workers = await runChannelWorkers(channelNameRouter({ jobs: slow }), services, {
        announce: false,
      });
      await layer.send("jobs", { type: "slow" });
      await busy;
      const results = [];
      // Up to the queue's capacity in Redis, and the few the worker took ahead: then refused.
      for (let n = 0; n <= capacity + WORKER_PREFETCH; n++) {
        const result = await layer.send("jobs", { type: "job", n });
        results.push(result);
        if (result.dropped > 0) break;
      }
      const queued = results.filter((r) => r.dropped === 0 && r.remoteProcesses === 1);
      assert(
        queued.length >= capacity && queued.length <= capacity + WORKER_PREFETCH,
        `${queued.length} queued before the first refusal`,
      );
      assertEquals(results.at(-1), { delivered: 0, dropped: 1, remoteProcesses: 0 });
      expected = queued.length;
      release();
      // Each waiting event is handled once the worker is free again: none was lost.
      await done;
      assertEquals(handled, queued.length);
      await workers.close();
      assertEquals(workers.stats().abandoned, 0);
    },
  });
}

Deno.test({
  name:
    "on redis, a backlog a busy worker works through keeps its expiry from the last take, not only from the last send",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("backlog");
    const layer = await RedisLayer.open({ url: redis!.url, prefix });
    await using services = await createTestServices({}, { layer });
    const admin = createClient({ url: redis!.url });
    await admin.connect();
    // Each job waits for its own release: the worker holds one job and one ahead, no more.
    const releases: (() => void)[] = [];
    const started: string[] = [];
    let onStart = () => {};
    const worker: ChannelWorker = () => ({
      events: {
        job: (event) =>
          new Promise<void>((resolve) => {
            started.push(String(event.n));
            releases.push(resolve);
            onStart();
          }),
      },
    });
    const workers = await runChannelWorkers(channelNameRouter({ jobs: worker }), services, {
      announce: false,
    });
    const nextStart = () => new Promise<void>((resolve) => onStart = resolve);
    try {
      const first = nextStart();
      for (const n of [1, 2, 3, 4]) await layer.send("jobs", { type: "job", n });
      await first;
      const key = `${prefix}:channel:{jobs}`;
      // As if the last send were long ago: the list is about to expire.
      await admin.expire(key, 5);
      const second = nextStart();
      releases[0](); // job 1 done: job 2 starts, and job 3 is taken ahead
      await second;
      const deadline = performance.now() + 2000;
      while (await admin.lLen(key) > 1 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assertEquals(await admin.lLen(key), 1, "job 4 still waits in Redis");
      const ttl = await admin.ttl(key);
      assert(ttl > 30, `the backlog expires in ${ttl} s: taking from it did not renew it`);
    } finally {
      onStart = () => releases.at(-1)?.(); // the rest run through
      for (const release of releases) release();
      await workers.close();
      await admin.close();
    }
  },
});
