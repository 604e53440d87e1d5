/**
 * The node-redis script runner (the streams' path on Sentinels and a Cluster), on one real
 * redis-server: which failures mean Redis may have run a publish, and which mean it did not.
 */
import { assert, assertInstanceOf, assertRejects } from "@std/assert";
import { nodeRedisScriptRunner } from "../../../layers/streams/_script_runner.ts";
import { RespConnection } from "../../../layers/_resp_connection.ts";
import { UnansweredError } from "../../../layers/_resp_errors.ts";
import { connectRedis } from "../../../storage/redis_connection.ts";
import { redisAvailability, startRedisServer } from "../../_support/redis.ts";
import { startTcpProxy } from "../../_support/tcp_proxy.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
const { available } = await redisAvailability({ privateServer: true });

// Loops until SCRIPT KILL: a command that Redis has surely read and is running.
const ENDLESS = "while true do end";

Deno.test({
  name: "a script written before its connection went rejects as unanswered: Redis may have run it",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    await using proxy = startTcpProxy(redis.port);
    const observer = await RespConnection.open(redis.url, { name: "observer" });
    const client = await connectRedis(`redis://127.0.0.1:${proxy.port}`, { name: "runner" });
    const runner = nodeRedisScriptRunner(client, 30_000);
    try {
      // Redis answers others BUSY once a script has run this long (the default is 5 s).
      await observer.call(["CONFIG", "SET", "busy-reply-threshold", "10"]);
      const endless = runner.run(["EVAL", ENDLESS, "0"]);
      endless.catch(() => {}); // settled below, once the connection is cut
      await untilBusy(observer);
      proxy.cut();
      const error = await assertRejects(() => endless, UnansweredError);
      assert(error.cause !== undefined, "the socket's own error is kept as the cause");
    } finally {
      await observer.call(["SCRIPT", "KILL"]).catch(() => {});
      await runner.close();
      await observer.close();
    }
  },
});

Deno.test({
  name: "an error Redis answers, and a call after the close, are plain failures: nothing ran",
  ignore: !available,
  fn: async () => {
    await using redis = await startRedisServer();
    const client = await connectRedis(redis.url, { name: "runner" });
    const runner = nodeRedisScriptRunner(client, 30_000);
    const unknownScript = "0".repeat(40);
    const answered = await assertRejects(() => runner.run(["EVALSHA", unknownScript, "0"]));
    assert(!(answered instanceof UnansweredError), `${answered}`);
    assertInstanceOf(answered, Error);
    await runner.close();
    const refused = await assertRejects(() => runner.run(["EVAL", "return 1", "0"]));
    assert(!(refused instanceof UnansweredError), `${refused}`);
  },
});

/** Resolves once Redis answers BUSY: the endless script is running. */
async function untilBusy(observer: RespConnection): Promise<void> {
  for (;;) {
    const busy = await observer.call(["PING"]).then(() => false, (error) => /BUSY/.test(error));
    if (busy) return;
  }
}
