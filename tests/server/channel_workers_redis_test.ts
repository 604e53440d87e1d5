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
