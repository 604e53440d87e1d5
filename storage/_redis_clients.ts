/**
 * Builds the node-redis client for each {@linkcode RedisForm}, and wires its events into the
 * {@linkcode RedisConnectionMachine} in the way that form reports them.
 */
import { createClient, createCluster, createSentinel } from "redis";
import type { RedisForm } from "./_redis_form.ts";
import { followFailover } from "./_cluster_slots.ts";
import { withTimeout } from "./with_timeout.ts";
import { divertSentinelPrints } from "./_sentinel_console.ts";
import {
  describeError,
  MAX_BACKOFF_MS,
  type RedisConnectionMachine,
  type RedisProbe,
} from "./_redis_connection_machine.ts";

/** A connected node-redis client. A Sentinel or Cluster connection answers the same commands. */
export type RedisClient = ReturnType<typeof createClient>;

/** How a connection behaves. */
export interface RedisConnectOptions {
  /** Names the connection in log lines, e.g. "layer commands". */
  name: string;
  /**
   * Queue commands while disconnected and send them on reconnect (the subscriber wants
   * this: its subscriptions survive). Without it a command fails at once while Redis is away.
   */
  offlineQueue?: boolean;
  /**
   * How long connecting may take (default 5 s); the first connect fails a second after that at
   * most, the time its PING (proof that Redis answered) is given.
   */
  connectTimeoutMs?: number;
  /** Called each time the connection is restored after an outage (a PING succeeded). */
  onReconnect?: () => void;
  /**
   * Through Sentinels: a command that failed as the master was lost is sent again to the master
   * found next (up to 3 times; default true). False for commands that must not run twice, such
   * as a publish: one written before the loss may have run.
   */
  resendAfterLostMaster?: boolean;
}

/** A client built for one form, not yet connected, with the probe its machine uses. */
export interface MadeClient {
  client: RedisClient;
  probe: RedisProbe;
  connect(): Promise<unknown>;
  /** Feeds the client's events to the machine. */
  watch(machine: RedisConnectionMachine): void;
  /** Called once the client is closed for good (or never connected). */
  closed(): void;
}

/** Builds the client for `form`; a one-server client stops reconnecting until `flags.verified`. */
export function makeClient(
  form: RedisForm,
  options: RedisConnectOptions,
  timeout: number,
  shown: string,
  flags: { verified: boolean },
): MadeClient {
  if (form.kind === "sentinel") return makeSentinel(form, options, timeout);
  if (form.kind === "cluster") return makeCluster(form, options, timeout);
  const client = createClient({
    url: form.url,
    disableOfflineQueue: !options.offlineQueue,
    socket: {
      connectTimeout: timeout,
      reconnectStrategy: (retries: number, cause: Error) => {
        if (!flags.verified) {
          return cannotConnect(shown, cause);
        }
        const backoff = Math.min(100 * 2 ** Math.min(retries, 10), MAX_BACKOFF_MS);
        return backoff + Math.floor(Math.random() * 100);
      },
    },
  });
  client.on("error", () => {}); // reported through the machine
  return {
    client,
    connect: () => client.connect(),
    probe: {
      ping: () => client.ping(),
      get isReady() {
        return client.isReady;
      },
      restart() {
        // Only a zombie gets here: it is "ready", so no reconnect loop of its own is running.
        destroyQuietly(client);
        client.connect().catch(() => {}); // fails only when closed meanwhile
      },
    },
    watch(machine) {
      client.on("error", (error: Error) => machine.failed(error));
      client.on("ready", () => machine.readied());
    },
    closed() {},
  };
}

/** How node-redis names a server in its Sentinel events. */
interface RedisNode {
  host: string;
  port: number;
}

function makeSentinel(
  form: Extract<RedisForm, { kind: "sentinel" }>,
  options: RedisConnectOptions,
  timeout: number,
): MadeClient {
  const sentinel = createSentinel({
    name: form.masterName,
    sentinelRootNodes: form.sentinels,
    // A lost master is rediscovered a few times per command before the command fails, and the
    // command sent again to the next one: not for commands that must not run twice (a publish).
    maxCommandRediscovers: options.resendAfterLostMaster === false ? 0 : 3,
    // Every command on one master connection held for good, in the order it was called. Without
    // it, commands called together while no lease is held wait for one, one round trip apart,
    // and a command called later, once a lease is held, goes out before them: one sender's
    // publishes were stored out of order.
    reserveClient: true,
    // The only report of a master connection's failure that reaches this object: node-redis
    // 5.12 emits its "client-error" events on an inner object and never passes them on.
    passthroughClientErrorEvents: true,
    nodeClientOptions: {
      disableOfflineQueue: !options.offlineQueue,
      password: form.password,
      socket: { connectTimeout: timeout },
    },
    sentinelClientOptions: { socket: { connectTimeout: timeout } },
  });
  sentinel.on("error", () => {}); // node-redis reports rediscovery here; the machine logs
  // And it prints each failed one to stdout: a debug line instead (see _sentinel_console.ts).
  const restorePrints = divertSentinelPrints();
  const client = sentinel as unknown as RedisClient;
  return {
    client,
    connect: () => sentinel.connect(),
    probe: {
      ping: () => sentinel.ping(),
      get isReady() {
        return sentinel.isReady;
      },
      // node-redis rebuilds its master clients itself on every topology change.
    },
    watch(machine) {
      // "Master Client (host:port): why" (see passthroughClientErrorEvents); the others are a
      // Sentinel's or a replica's, which do not stop commands.
      sentinel.on("error", (error: unknown) => {
        if (error instanceof Error && error.message.startsWith("Master Client (")) {
          machine.failed(error);
        }
      });
      sentinel.on("topology-change", (event: { type: string; node?: RedisNode }) => {
        if (event.type !== "MASTER_CHANGE") return;
        // A master replaced while its connection still looked fine stopped answering without
        // dropping it (paused, partitioned) or handed over (SENTINEL FAILOVER): commands sent to
        // it were lost all the same, so that is an outage too, which ends once the new one answers.
        if (machine.state === "ready") {
          const node = event.node ? `${event.node.host}:${event.node.port}` : "another server";
          machine.failed(new Error(`the Sentinels replaced the master with ${node}`));
        }
        machine.readied();
      });
    },
    closed: restorePrints,
  };
}

function makeCluster(
  form: Extract<RedisForm, { kind: "cluster" }>,
  options: RedisConnectOptions,
  timeout: number,
): MadeClient {
  const cluster = createCluster({
    rootNodes: form.nodes.map((node) => ({ socket: { host: node.host, port: node.port } })),
    defaults: {
      disableOfflineQueue: !options.offlineQueue,
      password: form.password,
      socket: { connectTimeout: timeout },
    },
  });
  cluster.on("error", () => {});
  const client = cluster as unknown as RedisClient;
  return {
    client,
    connect: () => cluster.connect(),
    probe: {
      // Every master must answer: a cluster missing one cannot serve that node's slots. One
      // that does not may have died with a replica promoted in its place: the slot map is read
      // again (node-redis would not), and the masters it names now are asked.
      async ping() {
        const pingMasters = async () => {
          const masters = cluster.masters;
          if (masters.length === 0) throw new Error("no masters known");
          await Promise.all(masters.map(async (node) => (await cluster.nodeClient(node)).ping()));
        };
        try {
          // Short: a dead master's client (with an offline queue) holds a ping until it is back.
          await withTimeout(pingMasters(), 1000, "no answer in time");
        } catch (error) {
          if (!await followFailover(client, form.nodes, form.password)) throw error;
          await pingMasters();
        }
      },
      get isReady() {
        return false; // node-redis restarts its node clients itself
      },
    },
    watch(machine) {
      cluster.on("node-error", (error: Error) => machine.failed(error));
      cluster.on("node-ready", () => machine.readied());
    },
    closed() {},
  };
}

/**
 * `Cannot connect to Redis at <shown>: <why>`, once: node-redis calls the reconnect strategy
 * again with the error it returned the first time, and a caller may wrap what it gets.
 */
export function cannotConnect(shown: string, cause: unknown): Error {
  const prefix = `Cannot connect to Redis at ${shown}: `;
  const why = describeError(cause);
  return new Error(why.startsWith(prefix) ? why : prefix + why);
}

/**
 * Drops a client's socket at once, whatever state it is in (closed already is fine); resolves
 * once it is dropped (a Sentinel client's loop may finish a round first).
 */
export async function destroyQuietly(client: RedisClient): Promise<void> {
  try {
    // The Sentinel's destroy is async; its failure means it was closed already.
    await (client.destroy() as unknown);
  } catch {
    // already closed
  }
}
