/**
 * The Redis layer: the group layer across processes and machines, on Redis pub/sub.
 *
 * - One subscriber connection per process and one command connection, however many sockets.
 * - A group's Redis channel is subscribed when the group gets its first local member and
 *   unsubscribed when it loses its last (channels_redis' pub/sub layer does the same).
 * - "Publish, then deliver locally": a group send publishes once, then delivers to this
 *   process's members directly; the process skips its own message when Redis echoes it back
 *   (it carries this process's id as its origin). Local counts in the result are exact.
 * - Membership is only local: Redis itself counts a group's subscribed processes for the
 *   result of a send, so a crashed process stops counting once Redis drops its connection.
 * - When Redis goes away, sends reject (the chat turns that into an error frame), joins still
 *   work locally, and on reconnect every group is subscribed again.
 *
 * What every cross-process layer shares is `_process_layer.ts`; what is Redis's own is
 * `redis_transport.ts`; the wire format is in `redis_wire.ts`.
 */
import { ProcessLayer } from "./_process_layer.ts";
import { RedisTransport } from "./redis_transport.ts";
import {
  closeRedis,
  connectRedis,
  isRedisCluster,
  type RedisForm,
  redisTarget,
} from "../storage/redis_connection.ts";
import { encodeGroupMessage, groupChannel } from "./redis_wire.ts";
import { type LayerEvent, validateEvent, validateGroupName } from "./layer.ts";
import { checkedEventJson } from "./event_json.ts";

/** How a Redis layer connects: `url` for one server, or `form` for Sentinels or a Cluster. */
export interface RedisLayerOptions {
  /** One Redis server, `redis://host:port`. */
  url?: string;
  /** A URL, Sentinel or Cluster form (see `redis_connection.ts`); wins over `url`. */
  form?: RedisForm;
  /** Prefix of every Redis key and channel, so several apps can share one Redis. */
  prefix: string;
  /** A publish not acknowledged within this time rejects (default 3 s). */
  publishTimeoutMs?: number;
  /** The first connect fails after this long (default 5 s). */
  connectTimeoutMs?: number;
}

/** The group layer on Redis pub/sub. Open it with {@linkcode RedisLayer.open}. */
export class RedisLayer extends ProcessLayer {
  #transport: RedisTransport;

  private constructor(transport: RedisTransport) {
    super(transport);
    this.#transport = transport;
  }

  /** Connects both connections; rejects with the target in the message when Redis is away. */
  static async open(options: RedisLayerOptions): Promise<RedisLayer> {
    const transport = await RedisTransport.open({
      target: redisTarget(options),
      prefix: options.prefix,
      publishTimeoutMs: options.publishTimeoutMs ?? 3000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    });
    return await new RedisLayer(transport).start();
  }

  /**
   * The name of this process's own channel while Redis has confirmed that this process hears
   * `group`, else `""`: a stream's script uses it to skip a publish only this process would
   * hear (see `RedisTransport.subscriptionWitness`).
   */
  subscriptionWitness(group: string): string {
    return this.#transport.subscriptionWitness(group);
  }
}

/**
 * Publishes one event to a group straight to Redis, in the wire format any program may use,
 * from outside every server (`deno task send`); resolves with how many processes heard it.
 */
export async function publishToGroup(
  options: { url?: string; form?: RedisForm; prefix: string },
  group: string,
  event: LayerEvent,
): Promise<number> {
  // Refused here, as a server's group send refuses it: the servers would each drop it.
  validateGroupName(group);
  validateEvent(event);
  checkedEventJson(event);
  const target = redisTarget(options);
  // Its PUBLISH written before a lost master may have run: sent again, it would deliver twice.
  const client = await connectRedis(target, {
    name: "send",
    connectTimeoutMs: 5000,
    resendAfterLostMaster: false,
  });
  try {
    const channel = groupChannel(options.prefix, group);
    const message = encodeGroupMessage(event);
    // Servers on a Cluster listen with SSUBSCRIBE, which hears SPUBLISH only.
    return isRedisCluster(target)
      ? await client.sPublish(channel, message)
      : await client.publish(channel, message);
  } finally {
    await closeRedis(client);
  }
}
