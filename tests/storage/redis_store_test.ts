import { assert, assertEquals } from "@std/assert";
import { storeContract } from "./store_contract.ts";
import { RedisStore } from "../../storage/redis_store.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());
const prefix = uniquePrefix("store");
const open = () => RedisStore.open({ url: redis!.url, prefix });

storeContract("redis store", open, { shared: true, ignore: !available });

Deno.test({
  name: "redis store: an expired entry is gone from get and list, and the sweep unlists it",
  ignore: !available,
  fn: async () => {
    const store = await open();
    try {
      await store.set(["expiry", "short"], 1, { expireInMs: 50 });
      await store.set(["expiry", "long"], 2, { expireInMs: 60_000 });
      const deadline = Date.now() + 5000;
      while (await store.get(["expiry", "short"]) !== null) {
        if (Date.now() > deadline) throw new Error("The entry did not expire within 5 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assertEquals((await store.list(["expiry"])).map((entry) => entry.value), [2]);
      await store.set(["expiry", "short2"], 3, { expireInMs: 1 });
      await new Promise((resolve) => setTimeout(resolve, 10)); // let 1 ms pass for Redis
      assertEquals(await store.sweep(Date.now() + 1000), 1);
    } finally {
      store.close();
    }
  },
});

Deno.test({
  name: "redis store: one sweep unlists every expired entry, not one batch of 500 a minute",
  ignore: !available,
  fn: async () => {
    // Sessions of a busy site expire faster than 500 a minute: the index must keep up.
    const store = await RedisStore.open({ url: redis!.url, prefix: uniquePrefix("sweep") });
    try {
      const count = 2_000;
      await Promise.all(
        Array.from(
          { length: count },
          (_, i) => store.set(["swept", `s${i}`], i, { expireInMs: 1 }),
        ),
      );
      await store.set(["swept", "kept"], "kept", { expireInMs: 60_000 });
      const deadline = Date.now() + 5000;
      while ((await store.list(["swept"])).length > 1) {
        if (Date.now() > deadline) throw new Error("The entries did not expire within 5 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // `list` unlists some of what it meets; the sweep takes all the rest at once.
      const swept = await store.sweep(Date.now() + 1000);
      assert(swept > 500 && swept <= count, `one sweep unlisted ${swept}`);
      assertEquals(await store.sweep(Date.now() + 1000), 0);
      assertEquals((await store.list(["swept"])).map((entry) => entry.value), ["kept"]);
    } finally {
      store.close();
    }
  },
});

Deno.test({
  name: "redis store: an unreachable Redis is a clear error naming the URL",
  ignore: !available,
  fn: async () => {
    const url = "redis://127.0.0.1:1";
    const error = await RedisStore.open({ url, prefix: "x", connectTimeoutMs: 1000 }).then(
      () => null,
      (error: Error) => error,
    );
    assertEquals(error?.message.startsWith(`Cannot connect to Redis at ${url}`), true);
  },
});
