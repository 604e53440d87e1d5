/**
 * Redis connections for the layer, presence and the store, in one of three forms: a plain URL,
 * a Sentinel set (node-redis' `createSentinel`) or a Cluster (`createCluster`). A bounded first
 * connect fails with the target in its message; after it, every connection runs the
 * {@linkcode RedisConnectionMachine}: one "lost" line per outage, and "restored" only once a
 * PING has succeeded on the connection again.
 *
 * This file opens, watches and closes connections; the forms live in `_redis_form.ts`, the
 * clients per form in `_redis_clients.ts` and the machine (and why a client's "ready" is not
 * trusted) in `_redis_connection_machine.ts`. What the rest of the tree uses is exported here.
 */
import { withTimeout } from "./with_timeout.ts";
import { trackRedisConnection } from "./redis_health.ts";
import {
  cannotConnect,
  destroyQuietly,
  makeClient,
  type RedisClient,
  type RedisConnectOptions,
} from "./_redis_clients.ts";
import { RedisConnectionMachine, type RedisConnectionState } from "./_redis_connection_machine.ts";
import { describeRedisForm, type RedisForm, toForm } from "./_redis_form.ts";

export type { RedisClient, RedisConnectOptions } from "./_redis_clients.ts";
export { onShardedChannelMoved } from "./_cluster_slots.ts";
export type { RedisConnectionState } from "./_redis_connection_machine.ts";
export {
  describeRedisForm,
  isRedisCluster,
  isSingleRedisServer,
  redactUrl,
  redisTarget,
} from "./_redis_form.ts";
export type { RedisForm, RedisNodeAddress } from "./_redis_form.ts";

/**
 * Connects to `target` (a URL or a {@linkcode RedisForm}). Rejects with an error naming it when
 * Redis cannot be reached within the connect timeout; after the first success, the connection
 * restores itself forever (see {@linkcode RedisConnectionMachine}).
 */
export async function connectRedis(
  target: string | RedisForm,
  options: RedisConnectOptions,
): Promise<RedisClient> {
  const form = toForm(target);
  const shown = describeRedisForm(form);
  const timeout = options.connectTimeoutMs ?? 5000;
  const flags = { verified: false };
  const made = makeClient(form, options, timeout, shown, flags);
  const machine = new RedisConnectionMachine(made.probe, {
    name: options.name,
    target: shown,
    onRestored: options.onReconnect,
  });
  made.watch(machine);
  try {
    // A PING proves it is Redis that answered (a proxy or another service also accepts TCP).
    const connected = made.connect().then(() => made.probe.ping());
    await withTimeout(connected, timeout + 1000, "no answer in time");
  } catch (error) {
    machine.close();
    destroyQuietly(made.client).finally(made.closed);
    throw cannotConnect(shown, error);
  }
  flags.verified = true;
  machine.connected();
  machines.set(made.client, machine);
  afterClose.set(made.client, made.closed);
  untrack.set(machine, trackRedisConnection(machine));
  return made.client;
}

/** The state of a connection made by {@linkcode connectRedis}, and since when it is lost. */
export function redisConnectionStatus(
  client: RedisClient,
): { state: RedisConnectionState; lostSince: number | null } {
  const machine = machines.get(client);
  if (!machine) return { state: "closed", lostSince: null };
  return { state: machine.state, lostSince: machine.lostSince };
}

/**
 * Whether a connection can take commands now: its machine says `ready` (a Cluster client has
 * no `isReady` of its own; a one-server client's `isReady` trusts a zombie socket).
 */
export function isRedisReady(client: RedisClient): boolean {
  const machine = machines.get(client);
  return machine ? machine.state === "ready" : client.isReady;
}

/**
 * A command on `client` got no answer within its bound while the client believes its socket
 * works (Redis paused, a stalled machine, a partition that drops packets): the connection is
 * lost until a PING is answered. So the outage is logged and shown (`channels_redis_up` 0) as
 * a refused connection is, and the socket is started again, so later calls fail at once rather
 * than each waiting out its bound.
 */
export function reportUnanswered(client: RedisClient, error: unknown): void {
  machines.get(client)?.unanswered(error);
}

/** Closes a client after its pending commands, waiting at most `ms` for them. */
export async function closeRedis(client: RedisClient, ms = 1000): Promise<void> {
  const ready = isRedisReady(client);
  const machine = machines.get(client);
  machine?.close();
  if (machine) untrack.get(machine)?.();
  machines.delete(client);
  const closed = afterClose.get(client) ?? (() => {});
  afterClose.delete(client);
  if (!client.isOpen) return closed();
  if (!ready) {
    // Nothing can be flushed; stop the reconnect loop now.
    destroyQuietly(client).finally(closed);
    return;
  }
  const flushed = await withTimeout(client.close(), ms, "Redis did not close in time")
    .then(() => true, () => false);
  if (flushed) closed();
  else destroyQuietly(client).finally(closed);
}

// Where the Redis code has always taken it from; it lives on its own so that code without
// Redis (the communicator) takes it without loading the Redis client.
export { withTimeout };

/** Connections made by connectRedis and their machines, for closeRedis and the status. */
const machines = new WeakMap<RedisClient, RedisConnectionMachine>();
/** What each connection's client wants to hear once it is closed (`MadeClient.closed`). */
const afterClose = new WeakMap<RedisClient, () => void>();
/** How each machine leaves the metrics' list of open connections (`redis_health.ts`). */
const untrack = new WeakMap<RedisConnectionMachine, () => void>();
