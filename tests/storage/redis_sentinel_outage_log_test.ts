/**
 * What a server through Sentinels writes while every Sentinel and the master are away: one
 * "lost" line per connection, and node-redis' failed rediscoveries (one a second per connection)
 * as one-line debug lines, never as the stack node-redis prints to stdout itself.
 */
import { assert, assertEquals } from "@std/assert";
import { requireTopologies, startOneSentinel } from "../_support/redis_topologies.ts";
import { startRedisServer } from "../_support/redis.ts";
import { startServerProcess } from "../scale/_process.ts";

const available = await requireTopologies();

Deno.test({
  name:
    "with every Sentinel and the master away, the server logs one lost line per connection and no stack per retry",
  ignore: !available,
  fn: async () => {
    await using master = await startRedisServer();
    await using sentinel = await startOneSentinel(master.port);
    const [{ host, port }] = (sentinel.form as { sentinels: { host: string; port: number }[] })
      .sentinels;
    await using server = await startServerProcess({
      LAYER: "redis",
      REDIS_SENTINELS: `${host}:${port}`,
      REDIS_SENTINEL_MASTER: "mymaster",
      // The level that shows most: the retries must be on one line each even there.
      LOG_LEVEL: "debug",
    });
    await sentinel[Symbol.asyncDispose]();
    await master.stop();
    // node-redis tries again once a second per connection: wait for a few rounds of them.
    await server.waitForOutput(/(?:None of the sentinels are available[\s\S]*?){8}/, 30_000);
    const lines = server.output().split("\n");
    const mentions = lines.filter((line) => line.includes("None of the sentinels"));
    const stackFrames = lines.filter((line) => /^\s+at /.test(line));
    assertEquals(stackFrames, [], "no stack reaches the output:\n" + server.output());
    for (const line of mentions) {
      assert(
        / DEBUG .*None of the sentinels are available/.test(line),
        `not a debug line: ${line}`,
      );
    }
    const lost = lines.filter((line) => /Redis connection \(.*\) .* lost; reconnecting/.test(line));
    assert(lost.length > 0, "an outage is logged:\n" + server.output());
    const names = lost.map((line) => line.match(/Redis connection \(([^)]*)\)/)![1]);
    assertEquals(names.length, new Set(names).size, "one lost line per connection:\n" + lost);
  },
});
