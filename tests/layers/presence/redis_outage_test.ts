/**
 * Redis presence while Redis is away: tracking a socket (what a chat join waits for) gives up
 * at once when Redis is stopped and within 3 s when it is paused, with an error the chat takes
 * as "presence unavailable" and a handshake as a 503, never hanging the join.
 */
import { assert } from "@std/assert";
import { RedisPresenceBackend } from "../../../layers/presence/redis.ts";
import { isBackendUnavailable } from "../../../storage/unavailable.ts";
import { withTimeout } from "../../../storage/with_timeout.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../../_support/redis.ts";

const { available } = await redisAvailability({ privateServer: true });

/** The error `call` rejected with after how long; one still pending after 6 s fails the test. */
async function failure(call: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const start = performance.now();
  const error = await withTimeout(call(), 6000, "still waiting after 6 s").then(
    () => null,
    (error: Error) => error,
  );
  if (error === null) throw new Error("it succeeded while Redis was away");
  assert(!error.message.includes("still waiting"), error.message);
  assert(isBackendUnavailable(error), `taken for a bug: ${Deno.inspect(error)}`);
  return { error, ms: performance.now() - start };
}

const ada = (id: string) => ({ username: "ada", connectionId: id, meta: {}, topic: "chat.a" });

Deno.test({
  name: "tracking a socket while Redis is stopped fails at once, not at a reconnect attempt",
  ignore: !available,
  fn: async () => {
    using captured = new CapturedLog();
    await using redis = await startRedisServer();
    const backend = await RedisPresenceBackend.open({ url: redis.url, prefix: uniquePrefix() });
    try {
      await redis.stop();
      await captured.waitFor(/Redis connection \(presence\) to \S+ lost/);
      // One join after another: each used to wait for the next reconnect attempt to fail.
      let total = 0;
      for (let i = 0; i < 5; i++) total += (await failure(() => backend.add(ada(`a${i}`)))).ms;
      assert(total < 300, `five joins waited ${Math.round(total)} ms for presence`);
    } finally {
      await backend.close();
    }
  },
});

Deno.test({
  name: "tracking a socket or reading who is online while Redis is paused fails after 3 s",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const backend = await RedisPresenceBackend.open({ url: redis.url, prefix: uniquePrefix() });
    try {
      redis.pause();
      const ended = await Promise.all([
        failure(() => backend.add(ada("a1"))),
        failure(() => backend.online("chat.a")),
        failure(() => backend.remove([ada("a0")])),
      ]);
      for (const { ms } of ended) assert(ms >= 2900 && ms < 4500, `after ${Math.round(ms)} ms`);
    } finally {
      redis.resume();
      await backend.close();
    }
  },
});
