/**
 * The Redis layer, presence and the store on a real 3-master Redis Cluster: the same
 * conformance suites as on one server, plus where the keys and channels land.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { redisFormSuites } from "./_redis_form_suites.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { processChannel } from "../../layers/redis_wire.ts";
import { RedisStore } from "../../storage/redis_store.ts";
import { SessionStore } from "../../auth/sessions.ts";
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

// One command to a node of the cluster, by port.
async function onNode(port: number, args: string[]): Promise<unknown> {
  const client = await connectRedis(`redis://127.0.0.1:${port}`, { name: "admin" });
  try {
    return await client.sendCommand(args);
  } finally {
    await closeRedis(client);
  }
}

// Moves `slot` to the master at `to`, as `redis-cli --cluster reshard` does: its keys first.
async function moveSlot(ports: number[], slot: number, from: number, to: number): Promise<void> {
  const idOf = async (port: number) => String(await onNode(port, ["CLUSTER", "MYID"]));
  const [fromId, toId] = [await idOf(from), await idOf(to)];
  await onNode(to, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromId]);
  await onNode(from, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", toId]);
  while (true) {
    const keys = await onNode(from, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100"]) as string[];
    if (keys.length === 0) break;
    await onNode(from, ["MIGRATE", "127.0.0.1", String(to), "", "0", "5000", "KEYS", ...keys]);
  }
  for (const port of ports) await onNode(port, ["CLUSTER", "SETSLOT", String(slot), "NODE", toId]);
}

// A member of `group` on `listener` that notes what it hears, and a way for `sender` to send to
// the group until the member hears a given send (each try waits 500 ms for it).
async function hearing(sender: RedisLayer, listener: RedisLayer, group: string) {
  const heard: unknown[] = [];
  let wake = () => {};
  await listener.groupAdd(
    group,
    listener.newChannel((event) => {
      heard.push(event.n);
      wake();
      return true;
    }),
  );
  const heardNext = (n: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 500);
      wake = () => heard.includes(n) && (clearTimeout(timer), resolve(true));
    });
  return async (n: number, tries = 20) => {
    for (let attempt = 0; attempt < tries; attempt++) {
      const next = heardNext(n);
      await sender.groupSend(group, { type: "t", n }).catch(() => {}); // a shard may be down
      if (await next) return true;
    }
    return false;
  };
}

// The slot of `name` (a key or a channel), and the port of the master that serves it now.
async function ownerOfName(ports: number[], name: string): Promise<{ slot: number; port: number }> {
  const slot = Number(await onNode(ports[0], ["CLUSTER", "KEYSLOT", name]));
  return { slot, port: await ownerOf(ports[0], slot) };
}

// The port of the master that serves `slot` now, asked of the node at `askPort`.
async function ownerOf(askPort: number, slot: number): Promise<number> {
  const nodes = String(await onNode(askPort, ["CLUSTER", "NODES"])).split("\n");
  const line = nodes.find((node) =>
    node.includes("master") && !node.includes("fail") &&
    node.split(" ").slice(8).some((range) => {
      const [low, high = low] = range.split("-").map(Number);
      return slot >= low && slot <= high;
    })
  );
  if (line === undefined) throw new Error(`No master serves slot ${slot}`);
  return Number(/:(\d+)@/.exec(line)![1]);
}

Deno.test({
  name: "redis cluster: a group whose slot moves to another master still hears the other processes",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("cluster-move");
    const [a, b] = [
      await RedisLayer.open({ form, prefix }),
      await RedisLayer.open({ form, prefix }),
    ];
    try {
      const sendUntilHeard = await hearing(a, b, "moving");
      assert(await sendUntilHeard(1), "heard before the move");
      const ports = cluster!.ports;
      const { slot, port: from } = await ownerOfName(ports, `${prefix}:group:moving`);
      const to = ports.find((port) => port !== from)!;
      await moveSlot(ports, slot, from, to);
      // Redis drops the subscription on the old owner; B subscribes again on the new one.
      assert(await sendUntilHeard(2), "B never heard A's sends after the slot moved");
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name:
    "redis cluster: after a master is killed and its replica takes over, the group is heard again",
  ignore: !available,
  fn: async () => {
    await using replicated = await startRedisCluster({ replicas: 1 });
    const prefix = uniquePrefix("cluster-failover");
    const open = () => RedisLayer.open({ form: replicated.form, prefix });
    const [a, b] = [await open(), await open()];
    try {
      const sendUntilHeard = await hearing(a, b, "room");
      assert(await sendUntilHeard(1), "heard before the failover");
      const { port: dead } = await ownerOfName(replicated.ports, `${prefix}:group:room`);
      await replicated.kill(dead);
      // node-redis would keep asking the dead master; the layer reads the slot map again.
      assert(await sendUntilHeard(2, 60), "B never heard A again after the replica took over");
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name:
    "redis cluster: after the master of a process's own channel is killed, sends to its sockets arrive again",
  ignore: !available,
  fn: async () => {
    await using replicated = await startRedisCluster({ replicas: 1 });
    const prefix = uniquePrefix("cluster-own");
    const open = () => RedisLayer.open({ form: replicated.form, prefix });
    const [a, b] = [await open(), await open()];
    try {
      const heard: unknown[] = [];
      const channel = b.newChannel((event) => {
        heard.push(event.n);
        return true;
      });
      const own = processChannel(prefix, b.processId);
      await replicated.kill((await ownerOfName(replicated.ports, own)).port);
      // The failover's new slot map drops the dead node's subscriptions: B's own channel too.
      let delivered = false;
      for (let n = 0; n < 60 && !delivered; n++) {
        const result = await a.send(channel, { type: "t", n }).catch(() => null);
        delivered = result !== null && !result.noListener && heard.length > 0;
        if (!delivered) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      assert(delivered, "B's sockets never heard a send again after the failover");
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name: "redis cluster: a log-out that failed on one node leaves its session for a password change",
  ignore: !available,
  fn: async () => {
    const ports = cluster!.ports;
    // A prefix whose sessions and whose index of them live on two different masters.
    let prefix = "";
    for (let n = 0; prefix === ""; n++) {
      const candidate = uniquePrefix(`cluster-sessions-${n}`);
      const records = await ownerOfName(ports, `{${candidate}:sessions}`);
      const index = await ownerOfName(ports, `{${candidate}:user_sessions}`);
      if (records.port !== index.port) prefix = candidate;
    }
    const recordsPort = (await ownerOfName(ports, `{${prefix}:sessions}`)).port;
    const store = await RedisStore.open({ form, prefix, commandTimeoutMs: 500 });
    try {
      const sessions = new SessionStore(store, { maxAgeSeconds: 3600 });
      const { id } = await sessions.create("ada");
      // The master of the records refuses writes as the log-out runs (NOREPLICAS).
      await onNode(recordsPort, ["CONFIG", "SET", "min-replicas-to-write", "1"]);
      try {
        await assertRejects(() => sessions.delete(id));
      } finally {
        await onNode(recordsPort, ["CONFIG", "SET", "min-replicas-to-write", "0"]);
      }
      assertEquals((await sessions.get(id))?.username, "ada", "the log-out did not happen");
      assertEquals((await sessions.endAllOf("ada")).length, 1, "a password change finds it");
      assertEquals(await sessions.get(id), null);
    } finally {
      store.close();
    }
  },
});

Deno.test({
  name: "redis cluster: a renewal marks its old session on one node before deleting it on another",
  ignore: !available,
  fn: async () => {
    const ports = cluster!.ports;
    // A prefix whose sessions and whose renewal marks live on two different masters.
    let prefix = "";
    for (let n = 0; prefix === ""; n++) {
      const candidate = uniquePrefix(`cluster-renewals-${n}`);
      const records = await ownerOfName(ports, `{${candidate}:sessions}`);
      const marks = await ownerOfName(ports, `{${candidate}:renewed_sessions}`);
      if (records.port !== marks.port) prefix = candidate;
    }
    const marksPort = (await ownerOfName(ports, `{${prefix}:renewed_sessions}`)).port;
    const store = await RedisStore.open({ form, prefix, commandTimeoutMs: 500 });
    try {
      const sessions = new SessionStore(store, { maxAgeSeconds: 3600 });
      const { id } = await sessions.create("ada");
      // The master of the marks refuses writes as the log-in again runs (NOREPLICAS).
      await onNode(marksPort, ["CONFIG", "SET", "min-replicas-to-write", "1"]);
      try {
        await assertRejects(() => sessions.create("ada", { replacing: id }));
      } finally {
        await onNode(marksPort, ["CONFIG", "SET", "min-replicas-to-write", "0"]);
      }
      // Never gone unmarked: its sockets are not told it logged out.
      assertEquals((await sessions.get(id))?.username, "ada");
      const renewed = await sessions.create("ada", { replacing: id });
      assertEquals([await sessions.get(id), await sessions.wasRenewed(id)], [null, true]);
      assertEquals(await sessions.wasRenewed(renewed.id), false);
    } finally {
      store.close();
    }
  },
});
