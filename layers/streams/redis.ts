/**
 * Retained group streams in Redis (`LAYER=redis`): one Redis Stream per group, so every
 * process agrees on offsets and reads what any of them published.
 *
 * A publish is one `EVALSHA` (one round trip; node-redis pipelines those made in one turn):
 * the script gives the group its epoch when it has none, takes the next offset (`HINCRBY`),
 * appends the event with the explicit id `0-<offset>` (`XADD`, bounded by `MAXLEN ~`), drops
 * at most two of the oldest entries the retention no longer keeps, and `PUBLISH`es the event,
 * offset and epoch in it, on the group's layer channel in the `redis_wire.ts` format. The
 * group's hash keeps the oldest entry's offset and time, so a publish that drops nothing reads
 * no entry, and one that drops an entry reads only the next. Redis runs scripts one at a time,
 * so every other subscribed process receives a group's events in offset order.
 *
 * This process's members get its own events when the script answers, as the Redis layer's
 * `groupSend` delivers locally once its `PUBLISH` is acknowledged: the published message
 * starts with this process's origin, so its copy coming back is skipped unparsed. When no
 * other process hears the group, the script does not publish at all: this process names its
 * own channel, subscribed on the same connection as the group (`subscriptionWitness`), and the
 * script counts the group's subscribers with `PUBSUB NUMSUB` only while that channel has one.
 * A process whose subscriber connection has gone, unknown to it yet, thus still publishes, and
 * a message meant for another process is never skipped. Replies of
 * one connection come in order, so one process's own events reach its members in offset
 * order; but another process's event published just before may arrive after them, on the
 * subscriber connection (a reader that sees a gap reads it from the stream, see below). A
 * publish that fails or times out delivers nothing here.
 *
 * With a layer whose channels are not ours (`channels_redis`), the script does not publish:
 * the event is sent through the layer after the script, and processes may then see two
 * publishers' events out of offset order (a reader that sees a gap reads it from the stream).
 *
 * Where the keys lie: `_redis_stream_keys.ts`. A publish whose answer was lost is looked for in
 * its stream and sent on once Redis answers again: `_settle_unconfirmed.ts`.
 *
 * One server by URL is sent both scripts (`SCRIPT LOAD`) on every connect, before any publish:
 * a Redis restarted empty knows them again before the first `EVALSHA`. Sentinels and a Cluster
 * are sent each script's text every time (`_script_runner.ts`), so a master that lacks it (a
 * replica just promoted, a node restarted empty) stores a sender's publishes in order. One server
 * by URL that does not know a script all the same (a `SCRIPT FLUSH` while connected) answers
 * `NOSCRIPT` and is sent its text once with `EVAL`, which caches it there. Only then may two
 * unawaited publishes of one sender, written on either side of that answer, be stored in the
 * opposite order: the retry goes behind the later one.
 */
import { type GroupLayer, type LayerEvent, validateGroupName } from "../layer.ts";
import { eventJson, freezeEvent, holdsBytes, jsonWithoutBytes } from "../event_json.ts";
import { Histogram } from "../../telemetry/metrics.ts";
import { groupChannel, groupMessageOpening } from "../redis_wire.ts";
import { RedisLayer } from "../redis.ts";
import { UnansweredError } from "../_resp_errors.ts";
import { stableHash36 } from "../../storage/store.ts";
import {
  describeRedisForm,
  isRedisCluster,
  type RedisForm,
  redisTarget,
} from "../../storage/redis_connection.ts";
import { openScriptRunner, runScript, type ScriptRunner, scriptSha1 } from "./_script_runner.ts";
import { INFO_ALLOWED, PUBLISH, READ } from "./_redis_stream_scripts.ts";
import { checkInfoAllowed, MasterCheckNotices, warnCheckOff } from "./_master_check.ts";
import { keptEventKey, streamKeys } from "./_redis_stream_keys.ts";
import { goesOnAcross, type MasterChange, parseMasterChanges } from "./_master_changes.ts";
import { SETTLE_LOOKBACK, settleUnconfirmed } from "./_settle_unconfirmed.ts";
import {
  DEFAULT_IDLE_EXPIRY_MS,
  DEFAULT_RETENTION,
  type GroupStreams,
  incomplete,
  newEpoch,
  type PublishOptions,
  PublishUnconfirmedError,
  retainedAtMost,
  sendStored,
  type SinceOptions,
  sinceVerdict,
  type StreamEvent,
  type StreamPosition,
  type StreamPublished,
  type StreamRead,
  type StreamRetention,
  validateCount,
  validateIdleExpiry,
  validatePosition,
  validatePublish,
  validateStreamedData,
  withoutReserved,
} from "./contract.ts";

/** How Redis streams connect and publish. */
export interface RedisStreamsOptions {
  /** A plain Redis URL; or `form` for Sentinel or Cluster. */
  url?: string;
  /** Sentinel or Cluster (see `RedisForm`); wins over `url`. */
  form?: RedisForm;
  /** The layer's prefix: keys and the group channels start with it. */
  prefix: string;
  /**
   * The layer the groups' members are on, to send through after the script. With
   * `publishInScript` the script publishes: a `RedisLayer` on the same prefix given here has
   * its members get this process's events when the script answers, not from Redis's echo.
   */
  layer?: GroupLayer;
  /** The script publishes on `<prefix>:group:<group>` (true for `LAYER=redis`). */
  publishInScript: boolean;
  /** Retention of groups whose publishers name none (default 1,000 messages or 10 minutes). */
  retention?: StreamRetention;
  /** How long a group's keys outlive its last publish, in ms (`DEFAULT_IDLE_EXPIRY_MS`). */
  idleExpiryMs?: number;
  /**
   * Each publish checks that the stream was last written on the master it writes to, and gives
   * it a new epoch when not: a failover may have lost the old master's last writes, and a Redis
   * restarted from a snapshot (or an `everysec` AOF) those since it. Default: on; it costs an
   * `INFO replication` per script call (about 1.3 µs of Redis's CPU). On, `open` rejects when
   * the Redis user may not run `INFO` (an ACL without `@dangerous`), on a Cluster on any of its
   * masters (ACLs are per node); off, it logs a warning.
   */
  checksMaster?: boolean;
  /** A command not answered within this time rejects (default 3 s). */
  timeoutMs?: number;
  /** The first connect fails after this long (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * Under load, how long a script call may wait to share one write and round trip with the next
   * ones (default 0: none here; the server passes `REDIS_LINGER_MS`, whose default is 10 ms).
   * One server by URL only: Sentinels and a Cluster go through node-redis, which writes each
   * turn's commands at once.
   */
  lingerMs?: number;
}

// Most events one read returns: more than any retention keeps by default.
const MAX_READ = 100_000;

/** {@linkcode GroupStreams} in Redis Streams; open with {@linkcode RedisStreams.open}. */
export class RedisStreams implements GroupStreams {
  #client: ScriptRunner;
  #options: RedisStreamsOptions;
  #retention: StreamRetention;
  #idleExpiryMs: string; // as the publish script takes it
  #shas: { publish: string; read: string } | null = null;
  #cluster: boolean;
  /** Each publish checks the stream was last written on this master (see `checksMaster`). */
  #checksMaster: boolean;
  /** Says what the check's publishes signal: a refused INFO, a new epoch. */
  #notices: MasterCheckNotices;
  // Epoch candidates: unique per call, so two losses of a stream never get the same epoch.
  #candidateBase = newEpoch().slice(0, 6);
  #candidates = 0;
  #closing: Promise<void> | null = null;
  /** The Redis layer the script publishes for, which this process's members are on. */
  #ownLayer: RedisLayer | null;
  /** How the script opens what it publishes: marked as this process's when `#ownLayer` is set. */
  #opening: string;
  /** How long each publish's script took, round trip included. */
  readonly writeSeconds: Histogram = new Histogram();

  private constructor(client: ScriptRunner, options: RedisStreamsOptions) {
    this.#client = client;
    this.#options = options;
    this.#retention = options.retention ?? DEFAULT_RETENTION;
    this.#idleExpiryMs = String(options.idleExpiryMs ?? DEFAULT_IDLE_EXPIRY_MS);
    this.#cluster = isRedisCluster(redisTarget(options));
    this.#checksMaster = options.checksMaster ?? true;
    this.#notices = new MasterCheckNotices(client);
    const layer = options.layer;
    this.#ownLayer = options.publishInScript && layer instanceof RedisLayer ? layer : null;
    this.#opening = groupMessageOpening(this.#ownLayer?.processId);
  }

  /** Connects and loads the scripts; rejects with the URL in the message when Redis is away. */
  static async open(options: RedisStreamsOptions): Promise<RedisStreams> {
    validateIdleExpiry(options.idleExpiryMs ?? DEFAULT_IDLE_EXPIRY_MS); // before it connects
    const client = await openScriptRunner(redisTarget(options), {
      ...options,
      // The master check's probe too: loaded as the others are, it runs as `EVALSHA` as they do.
      scripts: [PUBLISH, READ, INFO_ALLOWED],
    });
    const streams = new RedisStreams(client, options);
    try {
      await streams.#loadScripts();
      await streams.#checkMasterCheck();
    } catch (error) {
      await client.close();
      throw error;
    }
    return streams;
  }

  // A user that may not run the check is refused here, not found out after a failover.
  #checkMasterCheck(): Promise<void> {
    const shownUrl = describeRedisForm(redisTarget(this.#options));
    if (this.#checksMaster) return checkInfoAllowed(this.#client, shownUrl);
    return Promise.resolve(warnCheckOff(shownUrl));
  }

  async publish(
    group: string,
    event: LayerEvent,
    options?: PublishOptions,
  ): Promise<StreamPublished> {
    if (this.#closing !== null) throw new Error("Streams are closed");
    validatePublish(group, event, options); // before the event takes an offset
    validateStreamedData(event);
    const rest = withoutReserved(event);
    const channel = this.#options.publishInScript ? groupChannel(this.#options.prefix, group) : "";
    const started = performance.now();
    const args = this.#publishArgs(
      rest,
      options,
      channel,
      this.#ownLayer?.subscriptionWitness(group) ?? "",
    );
    let reply: [number, string, number, unknown?];
    try {
      reply = await this.#run("publish", group, args) as [number, string, number, unknown?];
    } catch (error) {
      if (error instanceof PublishUnconfirmedError) this.#settleUnconfirmed(group, args[1]);
      throw error;
    }
    this.writeSeconds.observe((performance.now() - started) / 1000);
    const [offset, epoch, receivers, signal] = reply;
    if (signal !== undefined) this.#notices.heard(group, signal, offset);
    if (this.#options.publishInScript) {
      const own = this.#ownLayer;
      // Members here get it now; Redis's copy to this process is skipped by its mark. The
      // replies of one connection come in order, so one process's publishes reach its
      // members in their offset order. Without members here there is nothing to build.
      if (own === null || !own.hasLocalMembers(group)) {
        return { delivered: 0, dropped: 0, remoteProcesses: receivers, offset, epoch };
      }
      const local = own.deliverPublished(group, { offset, epoch, ...rest });
      // Our own subscription is among the receivers Redis counted.
      return { ...local, remoteProcesses: Math.max(0, receivers - 1), offset, epoch };
    }
    const layer = this.#options.layer;
    if (layer === undefined) {
      throw new Error("Streams that do not publish in the script need a layer");
    }
    return await sendStored(layer, group, { offset, epoch, ...rest } as StreamEvent);
  }

  /**
   * The send's id and what it sent: two sends in one microsecond differ by their content. The
   * same in every process that received a copy (see `GroupStreams.foreignIdOf`).
   */
  foreignIdOf(received: LayerEvent): string | undefined {
    const send = this.#options.layer?.sendIdOf?.(received);
    if (send === undefined) return undefined;
    // Bytes from Django are hashed by their length: their JSON would list every byte. A 53-bit
    // hash, no cryptographic strength: a collision costs a message in history, and needs the
    // same send time to the microsecond.
    const text = holdsBytes(received) ? jsonWithoutBytes(received) : eventJson(received);
    return `${send.id}:${stableHash36(text)}`;
  }

  async keepForeign(
    group: string,
    received: LayerEvent,
    kept: LayerEvent,
    options?: PublishOptions,
  ): Promise<StreamEvent | null> {
    const send = this.#options.layer?.sendIdOf?.(received);
    const id = this.foreignIdOf(received);
    if (send === undefined || id === undefined) return null;
    if (this.#closing !== null) throw new Error("Streams are closed");
    // Made at once, not awaited: the scripts go out in the order the copies arrived, which is
    // the order they were sent, so that is their order in the stream too.
    const args = this.#publishArgs(withoutReserved(kept), options, "", "");
    // Remembered twice as long as a copy may take, so a late copy still finds it kept.
    args.push(String(2 * send.copiesWithinMs));
    const keptKey = keptEventKey(this.#options.prefix, this.#cluster, group, id);
    const reply = await this.#run("publish", group, args, keptKey);
    const [offset, json, signal] = reply as [number, string, unknown?];
    if (signal !== undefined) this.#notices.heard(group, signal, offset);
    // Every caller gets the one kept, whose id and time the first caller made.
    return freezeEvent(JSON.parse(json) as StreamEvent);
  }

  // Looked for in the stream once Redis answers again, and sent on as the publish would have.
  #settleUnconfirmed(group: string, body: string): void {
    void settleUnconfirmed(group, body, {
      latest: async () => (await this.#read(group, ["latest", String(SETTLE_LOOKBACK)]))[0].events,
      sendOn: (event) => {
        const own = this.#ownLayer;
        if (own !== null) return own.deliverPublished(group, event); // the others had its PUBLISH
        return this.#options.layer?.groupSend(group, event);
      },
      closing: () => this.#closing !== null,
    });
  }

  async since(
    group: string,
    position: StreamPosition,
    options: SinceOptions = {},
  ): Promise<StreamRead> {
    validateGroupName(group);
    validatePosition(position);
    const page = options.pageBytes;
    const [read, changes] = await this.#read(group, [
      "since",
      String(position.offset),
      String(MAX_READ),
      String(typeof page === "number" && page > 0 ? Math.floor(page) : 0),
    ]);
    // A position in an epoch a master change left, within what every master since has: it goes on.
    const goesOn = goesOnAcross(position, changes);
    const from = goesOn ? { epoch: read.epoch, offset: position.offset } : position;
    const reason = sinceVerdict(from, read, read.events[0]?.offset);
    return reason === null ? read : incomplete(read.epoch, read.offset, reason);
  }

  async latest(group: string, count: number): Promise<StreamRead> {
    validateGroupName(group);
    validateCount(count);
    const [read] = await this.#read(group, ["latest", String(Math.max(0, Math.floor(count)))]);
    read.events.reverse();
    return read;
  }

  close(): Promise<void> {
    // After the client's close: publishes under way still answer until then.
    return this.#closing ??= this.#client.close().finally(() => this.#notices.close());
  }

  // The read, and the master changes the stream remembers (`_master_changes.ts`).
  async #read(group: string, args: string[]): Promise<[StreamRead, MasterChange[]]> {
    const [epoch, offset, changes, ...texts] = await this.#run("read", group, [
      this.#candidate(),
      ...args,
    ]) as [string, number, string, ...string[]];
    // Events written before a master change carry an epoch it left: they are this epoch's now
    // (a client takes its position from them), as this master has every one it stores.
    const events = texts.map((text) => {
      const event = JSON.parse(text) as StreamEvent;
      if (event.epoch !== epoch) event.epoch = epoch;
      return event;
    });
    return [{ epoch, offset, complete: true, events }, parseMasterChanges(changes)];
  }

  // The publish script's arguments (see the script for each).
  #publishArgs(
    rest: LayerEvent,
    options: PublishOptions | undefined,
    channel: string,
    witness: string,
  ): string[] {
    const retention = options?.retention ?? this.#retention;
    return [
      this.#candidate(),
      eventJson(rest).slice(1),
      channel,
      String(retention.messages),
      String(retention.seconds * 1000),
      String(retainedAtMost(retention)),
      this.#cluster ? "SPUBLISH" : "PUBLISH",
      this.#opening,
      witness,
      this.#checksMaster ? "1" : "",
      this.#idleExpiryMs,
    ];
  }

  #candidate(): string {
    return `${this.#candidateBase}${(++this.#candidates).toString(36)}`;
  }

  // The scripts' SHA-1s, made here: a node that lacks a script is sent its text (`#run`), so
  // nothing needs loading on every master of a Cluster or on a Sentinel's new master.
  async #loadScripts(): Promise<void> {
    const [publish, read] = await Promise.all([scriptSha1(PUBLISH), scriptSha1(READ)]);
    this.#shas = { publish, read };
  }

  async #run(
    script: "publish" | "read",
    group: string,
    args: string[],
    keptKey?: string,
  ): Promise<unknown> {
    const keys: string[] = streamKeys(this.#options.prefix, this.#cluster, group);
    if (keptKey !== undefined) keys.push(keptKey);
    const text = script === "publish" ? PUBLISH : READ;
    try {
      return await runScript(this.#client, { sha: this.#shas![script], text }, keys, args, {
        read: script === "read",
      });
    } catch (error) {
      const shownUrl = describeRedisForm(redisTarget(this.#options));
      const text = `Stream ${script} on Redis at ${shownUrl} failed: ${(error as Error).message}`;
      // Written but unanswered: Redis may have run it, so the publish is not known to have failed.
      if (script === "publish" && error instanceof UnansweredError) {
        throw new PublishUnconfirmedError(text, { cause: error });
      }
      throw new Error(text, { cause: error }); // a lost connection stays one (a 503, not a 500)
    }
  }
}
