/**
 * `REDIS_LINGER_MS` does something only where the streams have their lean connection (one
 * Redis server by URL): anywhere else the server says at start that it does nothing.
 */
import { assert, assertEquals } from "@std/assert";
import { DEFAULT_CONFIG, DEFAULT_REDIS_LINGER_MS } from "../../server/config.ts";
import { openBackends } from "../../server/backends.ts";
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";

async function warningsAtStart(redisLingerMs: number): Promise<string[]> {
  const dataDir = await Deno.makeTempDir();
  using captured = new CapturedLog();
  log.setLevel("warn");
  try {
    const backends = await openBackends({ ...DEFAULT_CONFIG, dataDir, redisLingerMs });
    await backends.close();
  } finally {
    log.setLevel("error");
    await Deno.remove(dataDir, { recursive: true });
  }
  return captured.lines.filter((line) => line.includes("REDIS_LINGER_MS"));
}

Deno.test("a Redis linger set for the in-process layer is said to do nothing", async () => {
  const [warning, ...more] = await warningsAtStart(5);
  assert(
    warning?.includes("REDIS_LINGER_MS=5 has no effect: LAYER=memory does not use Redis"),
    `got ${warning}`,
  );
  assertEquals(more, []);
});

Deno.test("without a linger, or with the default one, nothing is said about it", async () => {
  assertEquals(await warningsAtStart(0), []);
  assertEquals(await warningsAtStart(DEFAULT_REDIS_LINGER_MS), [], "the default was not asked for");
});
