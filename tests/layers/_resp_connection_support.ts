/** What the RESP connection's test files share: whether a private redis-server runs, and `test`. */
import { redisAvailability } from "../_support/redis.ts";

/** Whether a private redis-server can be started here. */
const { available } = await redisAvailability({ privateServer: true });

/** A test of the connection, named `resp connection: <name>`, ignored without redis-server. */
export const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `resp connection: ${name}`, ignore: !available, fn });
