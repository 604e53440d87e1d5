/**
 * The Redis layer, presence and the store on a real 3-master Redis Cluster: the same
 * conformance suites as on one server, plus where the keys and channels land.
 */
import { assert, assertEquals } from "@std/assert";
import { redisFormSuites } from "./_redis_form_suites.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { RedisStore } from "../../storage/redis_store.ts";
import { closeRedis, connectRedis } from "../../storage/redis_connection.ts";
import { requireTopologies, startRedisCluster } from "../_support/redis_topologies.ts";
import { uniquePrefix } from "../_support/redis.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("error"); // the overflow case logs a warning by design
const available = await requireTopologies();
const cluster = available ? await startRedisCluster() : null;
globalThis.addEventListener("unload", () => cluster?.killNow());
const form = cluster?.form;

redisFormSuites("on a cluster", form, { prefix: "cluster", ignore: !available });

Deno.test({
  name: "redis cluster: store keys of one first part share a slot, different first parts spread",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("cluster-slots");
    const store = await RedisStore.open({ form, prefix });
    // CLUSTER KEYSLOT answers on any node, about any key.
    const client = await connectRedis(`redis://127.0.0.1:${cluster!.ports[0]}`, { name: "slots" });
    try {
      const parts = Array.from({ length: 12 }, (_, i) => `part${i}`);
      for (const part of parts) {
        await store.set([part, "a", "b"], { part }, { expireInMs: 300 });
        await store.set([part, "c"], { part });
      }
      const slots = new Set<number>();
      for (const part of parts) {
        const keys = [`{${prefix}:${part}}:kv:x`, `{${prefix}:${part}}:expiring`];
        const [data, expiring] = await Promise.all(
          keys.map((key) => client.sendCommand(["CLUSTER", "KEYSLOT", key]) as Promise<number>),
        );
        assertEquals(data, expiring);
        slots.add(Number(data));
        assertEquals(await store.get([part, "a", "b"]), { part });
      }
      assert(slots.size > 1, "first parts spread over several slots");
      // Redis drops the values on its own; the sweep then unlists them from every part's set.
      const deadline = Date.now() + 5000;
      while (await store.get(["part11", "a", "b"]) !== null && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assertEquals(await store.sweep(), 12, "the sweep finds the expired keys of every part");
      assertEquals((await store.list(["part0"])).length, 1);
    } finally {
      store.close();
      await closeRedis(client);
    }
  },
});

Deno.test({
  name: "redis cluster: a group send uses sharded pub/sub and counts the processes of every shard",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("cluster-sharded");
    const layers = await Promise.all([0, 1, 2].map(() => RedisLayer.open({ form, prefix })));
    try {
      const groups = Array.from({ length: 6 }, (_, i) => `room.${i}`);
      for (const layer of layers.slice(1)) {
        for (const group of groups) await layer.groupAdd(group, layer.newChannel(() => true));
      }
      for (const group of groups) {
        const result = await layers[0].groupSend(group, { type: "hello" });
        assertEquals(result.remoteProcesses, 2, `${group} reached both other processes`);
      }
    } finally {
      await Promise.all(layers.map((layer) => layer.close()));
    }
  },
});
