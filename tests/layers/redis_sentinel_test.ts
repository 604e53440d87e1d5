/**
 * The Redis layer, presence and the store through Sentinels (a master, one replica, three
 * Sentinels): the same conformance suites as on one server, and what a connection logs when
 * its master dies or stops answering. The failover under chat is tests/scale/redis_failover_test.ts.
 */
import { assert, assertEquals } from "@std/assert";
import { redisFormSuites } from "./_redis_form_suites.ts";
import { RedisLayer } from "../../layers/redis.ts";
import {
  type RedisSentinelTopology,
  requireTopologies,
  startRedisSentinel,
} from "../_support/redis_topologies.ts";
import { uniquePrefix } from "../_support/redis.ts";
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { closeRedis, connectRedis } from "../../storage/redis_connection.ts";

log.setLevel("error"); // the overflow case logs a warning by design
const available = await requireTopologies();
const sentinel = available ? await startRedisSentinel() : null;
globalThis.addEventListener("unload", () => sentinel?.killNow());
const form = sentinel?.form;

redisFormSuites("through sentinels", form, { prefix: "sentinel", ignore: !available });

Deno.test({
  name:
    "redis through sentinels: killing the master while two processes chat, sends flow again within 10 s and none is lost without its sender being told",
  ignore: !available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Its own topology: the shared one must keep its master for the other cases.
    await using topology = await startRedisSentinel();
    const prefix = uniquePrefix("sentinel-failover");
    const [a, b] = [
      await RedisLayer.open({ form: topology.form, prefix }),
      await RedisLayer.open({ form: topology.form, prefix }),
    ];
    const received = new Set<number>();
    await b.groupAdd(
      "room",
      b.newChannel((event) => {
        received.add(event.n as number);
        return true;
      }),
    );
    // What each send's sender was told: refused, or how many other processes it reached.
    const told = new Map<number, "refused" | number>();
    let killedAt = 0;
    let backAt = 0;
    const deadline = Date.now() + 40_000;
    try {
      for (let n = 0; Date.now() < deadline && (backAt === 0 || n < 200); n++) {
        const result = await a.groupSend("room", { type: "chat", n }).then(
          (sent) => sent.remoteProcesses,
          () => "refused" as const,
        );
        told.set(n, result);
        if (n === 20) {
          killedAt = Date.now();
          await topology.killMaster();
        }
        if (killedAt > 0 && backAt === 0 && n > 21 && result === 1) backAt = Date.now();
        await new Promise((resolve) => setTimeout(resolve, result === 1 ? 5 : 50));
      }
      assert(backAt > 0, "sends never reached the other process again after the failover");
      assert(backAt - killedAt < 10_000, `back after ${backAt - killedAt} ms`);
      const reached = [...told].filter(([, result]) => result === 1).map(([n]) => n);
      const waitUntil = Date.now() + 5000;
      while (!received.has(reached.at(-1)!) && Date.now() < waitUntil) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const silentlyLost = reached.filter((n) => !received.has(n));
      assertEquals(silentlyLost, [], "a send reported as reaching the process reached it");
      const refused = [...told.values()].filter((result) => result === "refused").length;
      const unreached = [...told.values()].filter((result) => result === 0).length;
      console.log(
        `failover: back after ${backAt - killedAt} ms; ${told.size} sends, ${refused} refused, ` +
          `${unreached} reported as reaching no other process`,
      );
    } finally {
      await a.close();
      await b.close();
    }
  },
});

for (
  const [how, outage] of [
    ["killed", async (topology) => void await topology.killMaster()],
    ["paused", async (topology) => {
      const paused = await topology.pauseMaster();
      return () => paused.resume();
    }],
  ] as const satisfies readonly [string, (t: RedisSentinelTopology) => Promise<unknown>][]
) {
  Deno.test({
    name:
      `redis through sentinels: a master ${how} while connected logs one "lost" and one "restored" line`,
    ignore: !available,
    fn: async () => {
      await using topology = await startRedisSentinel();
      using captured = new CapturedLog();
      log.setLevel("info");
      const client = await connectRedis(topology.form, { name: "watched" });
      try {
        const resume = await outage(topology);
        await captured.waitFor(/Redis connection \(watched\) .* lost; reconnecting/, 20_000);
        await captured.waitFor(/Redis connection \(watched\) .* restored after \d+ ms/, 20_000);
        if (typeof resume === "function") resume();
        assertEquals(await client.ping(), "PONG");
        const lines = (pattern: RegExp) => captured.lines.filter((line) => pattern.test(line));
        assertEquals(lines(/\(watched\).* lost/).length, 1, captured.lines.join("\n"));
        assertEquals(lines(/\(watched\).* restored/).length, 1, captured.lines.join("\n"));
      } finally {
        log.setLevel("error");
        await closeRedis(client);
      }
    },
  });
}
