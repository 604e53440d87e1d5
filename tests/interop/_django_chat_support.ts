/** What the chat's channels_redis test files share: a Redis, and the site over it. */
import { assert } from "@std/assert";
import { ChannelsRedisLayer } from "../../layers/channels_redis.ts";
import { Communicator } from "../../testing.ts";
import { createTestApp } from "../_support/test_app.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import type { DjangoLayerSettings } from "./_django.ts";

/** How long a test waits for a message. */
export const WAIT_MS = 15_000;
/** Whether the tests have a Redis. */
export const { available: redisAvailable } = await redisAvailability();
/** The tests' Redis, closed when the test file unloads; `null` without one. */
export const redis = redisAvailable ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

/** The site over a channels_redis layer on a fresh prefix; `await using` closes it. */
export async function siteOnChannelsRedis() {
  const settings: DjangoLayerSettings = { redisUrl: redis!.url, prefix: uniquePrefix("asgi") };
  const layer = await ChannelsRedisLayer.open({ url: settings.redisUrl, prefix: settings.prefix });
  const app = await createTestApp({}, { layer });
  return {
    settings,
    app,
    async join(room: string): Promise<Communicator> {
      const comm = new Communicator(app, `/ws/chat/${room}/`);
      assert((await comm.connect()).accepted, `joining "${room}" was refused`);
      return comm;
    },
    [Symbol.asyncDispose]: () => app[Symbol.asyncDispose](),
  };
}
