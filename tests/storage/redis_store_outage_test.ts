/**
 * The Redis store while Redis is away: each call gives up within its bound with an error a page
 * answers 503 for, whether Redis is paused (TCP open, no answers) or stopped (refused).
 */
import { assert, assertEquals } from "@std/assert";
import { RedisStore } from "../../storage/redis_store.ts";
import { isBackendUnavailable } from "../../storage/unavailable.ts";
import { withTimeout } from "../../storage/with_timeout.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";

const { available } = await redisAvailability({ privateServer: true });

/** How `call` ended and after how long; a call still pending after `ms` fails the test. */
async function outcome(
  call: () => Promise<unknown>,
  ms: number,
): Promise<{ error: Error | null; ms: number }> {
  const start = performance.now();
  const error = await withTimeout(call(), ms, `still waiting after ${ms} ms`).then(
    () => null,
    (error: Error) => error,
  );
  return { error, ms: performance.now() - start };
}

Deno.test({
  name: "every redis store call on a paused Redis fails as unavailable after 3 s, not at its end",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    const store = await RedisStore.open({ url: redis.url, prefix: uniquePrefix("paused") });
    try {
      await store.set(["users", "ada"], { name: "Ada" });
      redis.pause();
      const calls = [
        () => store.get(["users", "ada"]),
        () => store.set(["users", "bob"], { name: "Bob" }),
        () => store.set(["sessions", "s1"], 1, { expireInMs: 60_000 }),
        () => store.create(["users", "cy"], { name: "Cy" }),
        () => store.delete(["users", "ada"]),
        () => store.list(["users"]),
      ];
      // Well past the 3 s bound, and well before the pause would end on its own (never).
      const ended = await Promise.all(calls.map((call) => outcome(call, 6000)));
      for (const { error, ms } of ended) {
        if (error === null) throw new Error("a call succeeded on a paused Redis");
        assert(!error.message.includes("still waiting"), error.message);
        assert(isBackendUnavailable(error), `taken for a bug: ${Deno.inspect(error)}`);
        assert(error.message.includes(redis.url), error.message);
        assert(ms >= 2900 && ms < 4500, `gave up after ${Math.round(ms)} ms`);
      }
      redis.resume();
      // Back to normal once Redis answers again (the connection was found lost meanwhile).
      await captured.waitFor(/Redis connection \(store\) to \S+ restored after \d+ ms/, 15_000);
      await store.set(["users", "di"], { name: "Di" });
      assertEquals(await store.get(["users", "di"]), { name: "Di" });
    } finally {
      redis.resume();
      store.close();
    }
  },
});

Deno.test({
  name: "a redis store write while Redis is stopped fails at once, not at a reconnect attempt",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    const store = await RedisStore.open({ url: redis.url, prefix: uniquePrefix("stopped") });
    try {
      await redis.stop();
      await captured.waitFor(/Redis connection \(store\) to \S+ lost/);
      // One after another, as a sign-up's calls are: each used to wait for the next reconnect
      // attempt to fail (100 ms, 200 ms, 400 ms… up to 5 s apart).
      const start = performance.now();
      for (let i = 0; i < 5; i++) {
        const { error } = await outcome(() => store.set(["attempts", `a${i}`], i), 6000);
        if (error === null) throw new Error("a write succeeded on a stopped Redis");
        assert(isBackendUnavailable(error), `taken for a bug: ${Deno.inspect(error)}`);
        assert(!error.message.includes("still waiting"), error.message);
      }
      const ms = performance.now() - start;
      assert(ms < 300, `five writes took ${Math.round(ms)} ms to fail`);
      // Refused, not queued: a write its caller was told failed is not made once Redis is back.
      await redis.restart();
      await captured.waitFor(/Redis connection \(store\) to \S+ restored/, 15_000);
      assertEquals(await store.list(["attempts"]), []);
    } finally {
      store.close();
    }
  },
});

Deno.test({
  name:
    "a paused Redis is logged as a lost store connection once its first call goes unanswered, and restored once it answers",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    const store = await RedisStore.open({ url: redis.url, prefix: uniquePrefix("stall-seen") });
    try {
      redis.pause();
      const first = await outcome(() => store.get(["users", "ada"]), 6000);
      assert(first.error !== null && isBackendUnavailable(first.error), String(first.error));
      // Seen as an outage, as a refused connection is: one line, and the metrics' gauge at 0.
      await captured.waitFor(/Redis connection \(store\) to \S+ lost; reconnecting: .*no answer/);
      await Promise.all([1, 2, 3].map((n) => outcome(() => store.get(["users", `u${n}`]), 6000)));
      redis.resume();
      await captured.waitFor(/Redis connection \(store\) to \S+ restored after \d+ ms/, 15_000);
      const lost = captured.lines.filter((line) => /Redis connection \(store\).* lost/.test(line));
      assertEquals(lost.length, 1, lost.join("\n"));
      await store.set(["users", "di"], { name: "Di" });
      assertEquals(await store.get(["users", "di"]), { name: "Di" });
    } finally {
      redis.resume();
      store.close();
    }
  },
});
