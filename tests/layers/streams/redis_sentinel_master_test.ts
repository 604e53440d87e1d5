/**
 * The streams through Sentinels, where the master and the link to it misbehave: a publish whose
 * answer is lost with its connection is not sent again (it may have run, so a second run would
 * store the message twice), a master that refuses SCRIPT LOAD still takes publishes, and a
 * master killed under load keeps one sender's messages in order.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import { RedisStreams } from "../../../layers/streams/redis.ts";
import { PublishUnconfirmedError } from "../../../layers/streams/contract.ts";
import {
  requireTopologies,
  startOneSentinel,
  startRedisSentinel,
} from "../../_support/redis_topologies.ts";
import { startRedisServer, uniquePrefix } from "../../_support/redis.ts";
import { closeRedis, connectRedis } from "../../../storage/redis_connection.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
const available = await requireTopologies();

Deno.test({
  name: "a publish whose answer the master's connection lost is unconfirmed, and stored once",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    await using link = startLossyLink(master.port);
    await using sentinel = await startOneSentinel(link.port);
    const prefix = uniquePrefix("lost-master");
    // The members' layer is not under test here: an in-process one.
    const layer = new InMemoryLayer();
    const streams = await RedisStreams.open({
      form: sentinel.form,
      prefix,
      layer,
      publishInScript: false,
    });
    try {
      await streams.publish("room", { type: "t", n: 1 });
      link.dropAfterNextScript();
      await assertRejects(
        () => streams.publish("room", { type: "t", n: 2 }),
        PublishUnconfirmedError,
      );
      const stored = await streams.latest("room", 10);
      assertEquals(stored.events.map((event) => event.n), [1, 2], "stored once, in order");
    } finally {
      await streams.close();
      await layer.close();
    }
  },
});

/**
 * A link to the master that can drop a client's connection just after the master answered a
 * script, before the answer gets through (a load balancer, a NAT, a flaky network).
 */
function startLossyLink(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let armed = false;
  const pipes: Promise<void>[] = [];
  const serve = async (client: Deno.Conn) => {
    const master = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    let scriptSeen = false;
    const close = () =>
      [client, master].forEach((conn) => {
        try {
          conn.close();
        } catch {
          // closed already
        }
      });
    const up = (async () => {
      const buffer = new Uint8Array(1 << 16);
      for (let n = await client.read(buffer); n !== null; n = await client.read(buffer)) {
        const bytes = buffer.subarray(0, n);
        if (armed && new TextDecoder().decode(bytes).includes("EVAL")) scriptSeen = true; // EVAL or EVALSHA
        await master.write(bytes);
      }
    })().catch(() => {});
    const down = (async () => {
      const buffer = new Uint8Array(1 << 16);
      for (let n = await master.read(buffer); n !== null; n = await master.read(buffer)) {
        if (armed && scriptSeen) {
          armed = false; // the script ran; its answer is lost with the connection
          break;
        }
        await client.write(buffer.subarray(0, n));
      }
    })().catch(() => {});
    await Promise.race([up, down]);
    close();
    await Promise.all([up, down]);
  };
  const accepting = (async () => {
    for await (const conn of listener) pipes.push(serve(conn).catch(() => {}));
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    dropAfterNextScript() {
      armed = true;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(pipes);
    },
  };
}

Deno.test({
  name: "through sentinels, a master that refuses SCRIPT LOAD still takes publishes",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    // An ACL that allows scripts to run but not to be loaded ahead.
    const admin = await connectRedis(master.url, { name: "admin" });
    try {
      await admin.sendCommand(["ACL", "SETUSER", "default", "-script|load"]);
    } finally {
      await closeRedis(admin);
    }
    await using sentinel = await startOneSentinel(master.port);
    const layer = new InMemoryLayer();
    const streams = await RedisStreams.open({
      form: sentinel.form,
      prefix: uniquePrefix("no-load"),
      layer,
      publishInScript: false,
    });
    try {
      const published = await streams.publish("room", { type: "t", n: 1 });
      assertEquals(published.offset, 1);
      assertEquals((await streams.latest("room", 10)).events.map((event) => event.n), [1]);
    } finally {
      await streams.close();
      await layer.close();
    }
  },
});

Deno.test({
  name:
    "a master killed while one sender publishes: its messages are stored in the order sent, and none it was told was not sent",
  ignore: !available,
  fn: async () => {
    await using topology = await startRedisSentinel();
    const layer = new InMemoryLayer();
    const streams = await RedisStreams.open({
      form: topology.form,
      prefix: uniquePrefix("killed-master"),
      layer,
      publishInScript: false,
    });
    // What each publish's sender was told.
    const told = new Map<number, "stored" | "not sent" | "not confirmed">();
    const publishes: Promise<void>[] = [];
    const killAfter = 10;
    try {
      // A chat sender's pace: one every 100 ms, each sent before the last is answered, until
      // 10 sent after the kill have been stored.
      const storedAfterKill = () => [...told].filter(([n, t]) => n > killAfter && t === "stored");
      for (let n = 0; storedAfterKill().length < 10; n++) {
        assert(n < 300, "publishes were never stored again after the failover");
        publishes.push(
          streams.publish("room", { type: "t", n }).then(
            () => void told.set(n, "stored"),
            (error) =>
              void told.set(
                n,
                error instanceof PublishUnconfirmedError ? "not confirmed" : "not sent",
              ),
          ),
        );
        if (n === killAfter) await topology.killMaster();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await Promise.all(publishes);
      // Written behind anything node-redis still held.
      await streams.publish("room", { type: "t", n: told.size });
      const stored = (await streams.latest("room", 1000)).events.map((event) => event.n as number);
      assertEquals(stored, [...stored].sort((a, b) => a - b), "stored in the order sent");
      const notSent = [...told].filter(([, t]) => t === "not sent").map(([n]) => n);
      assertEquals(stored.filter((n) => notSent.includes(n)), [], "told 'not sent', yet stored");
    } finally {
      await streams.close();
      await layer.close();
    }
  },
});
