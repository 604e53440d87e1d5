/**
 * `HISTORY_IDLE_DAYS` reaches every store the rooms' streams write to, as the server opens them:
 * Redis (its publish script, and a send from outside), and Deno KV in `DATA_DIR` (the
 * in-process streams' chunks and the Workers' commits without a parent).
 */
import { assert } from "@std/assert";
import { createClient } from "redis";
import { loadConfig } from "../../server/config.ts";
import { appendFromOutside, openBackends } from "../../server/backends.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";

const DAY = 24 * 60 * 60 * 1000;
const redis = await redisAvailability();

/** Asserts `expiresInMs` is the 2 days asked for, give or take the test's own minute. */
function assertTwoDays(what: string, expiresInMs: number): void {
  assert(expiresInMs > 2 * DAY - 60_000 && expiresInMs <= 2 * DAY, `${what}: ${expiresInMs} ms`);
}

/** When each key of `dataDir`'s Deno KV file that names `group` expires, from now. */
async function kvExpiries(dataDir: string, group: string): Promise<[string, number][]> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(`${dataDir}/channels.kv`, { readOnly: true });
  try {
    const rows = db.prepare("SELECT k, expiration_ms FROM kv").all() as {
      k: Uint8Array;
      expiration_ms: number;
    }[];
    const text = (key: Uint8Array) => new TextDecoder().decode(key).replace(/[^\x20-\x7e]/g, "/");
    return rows.filter((row) => text(row.k).includes(group))
      .map((row) => [text(row.k), row.expiration_ms - Date.now()]);
  } finally {
    db.close();
  }
}

for (const layer of ["memory", "broadcast"] as const) {
  Deno.test(`HISTORY_IDLE_DAYS: LAYER=${layer} stores a room's messages and record to expire then`, async () => {
    const dataDir = await Deno.makeTempDir();
    try {
      const config = loadConfig([], { DATA_DIR: dataDir, LAYER: layer, HISTORY_IDLE_DAYS: "2" });
      const backends = await openBackends(config);
      try {
        await backends.streams.publish("room.idle", { type: "chat.message", text: "hi" });
      } finally {
        await backends.close(); // the in-process streams write on the way out
      }
      const expiries = await kvExpiries(dataDir, "room.idle");
      assert(expiries.length >= 2, `a record and a message: ${JSON.stringify(expiries)}`);
      for (const [key, expiresIn] of expiries) assertTwoDays(key, expiresIn);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  });
}

Deno.test({
  name:
    "HISTORY_IDLE_DAYS: LAYER=redis gives a room's keys that long, from the server and from outside",
  ignore: !redis.available,
}, async () => {
  await using server = await testRedisUrl();
  const dataDir = await Deno.makeTempDir();
  const redisPrefix = uniquePrefix("idle");
  const config = loadConfig([], {
    DATA_DIR: dataDir,
    LAYER: "redis",
    REDIS_URL: server.url,
    REDIS_PREFIX: redisPrefix,
    HISTORY_IDLE_DAYS: "2",
  });
  const client = createClient({ url: server.url });
  await client.connect();
  const keys = (
    group: string,
  ) => [`${redisPrefix}:stream-meta:${group}`, `${redisPrefix}:stream:${group}`];
  try {
    const backends = await openBackends(config);
    try {
      await backends.streams.publish("room.server", { type: "chat.message", text: "hi" });
    } finally {
      await backends.close();
    }
    await appendFromOutside(config, "room.outside", { type: "chat.message", text: "hi" });
    for (const key of [...keys("room.server"), ...keys("room.outside")]) {
      assertTwoDays(key, await client.pTTL(key));
    }
  } finally {
    await client.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
