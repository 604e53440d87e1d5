/**
 * Two gaps of node-redis 5.12's Cluster client (pinned in `deno.lock`), closed through the slot
 * map it keeps as `_slots`:
 *
 * - It reads the slot map again only on a `MOVED` answer. A master that died (SIGKILL) answers
 *   nothing, so its slots were asked of it for ever after its replica took them over:
 *   {@linkcode followFailover} reads the map again once the cluster names other masters. Not
 *   before: reading a map that still names the dead master connects to it, and that connect,
 *   retried for ever, would hold every later reading.
 * - A sharded channel whose slot moved (a reshard, a failover) is dropped by Redis with a
 *   `SUNSUBSCRIBE`, which its node client reports as `sharded-channel-moved`, while the cluster
 *   listens for `server-sunsubscribe` to subscribe it again on the new node: it was left
 *   unsubscribed without a word. {@linkcode onShardedChannelMoved} reports it.
 */
import { createClient } from "redis";
import { withTimeout } from "./with_timeout.ts";

// A connected node-redis Cluster client, typed here only by what is read of it (a type from
// `_redis_clients.ts` would make an import cycle: it calls this file).
type ClusterClient = object;

// The parts of node-redis's `RedisClusterSlots` used here.
interface ClusterSlots {
  rediscover(startWith: { options: unknown }): Promise<void>;
  getShardedPubSubClient(channel: string): Promise<ShardedNodeClient>;
}

interface ShardedNodeClient {
  options?: unknown;
  on(event: "sharded-channel-moved", listener: (channel: string) => void): unknown;
}

function slotsOf(cluster: ClusterClient): ClusterSlots | null {
  const slots = (cluster as unknown as { _slots?: ClusterSlots })._slots;
  return typeof slots?.rediscover === "function" ? slots : null;
}

type Node = { host: string; port: number };

// How long one root node has to say which masters serve the slots.
const ROOT_ANSWER_MS = 1000;

/**
 * Reads the slot map again when the masters the cluster names (asked of the first of `roots`
 * that answers) are not the ones `cluster` knows: after a failover. True when it did.
 */
export async function followFailover(
  cluster: ClusterClient,
  roots: readonly Node[],
  password: string | undefined,
): Promise<boolean> {
  const slots = slotsOf(cluster);
  if (slots === null) return false;
  const named = await mastersNamed(roots, password);
  const masters = (cluster as unknown as { masters: Node[] }).masters;
  const known = new Set(masters.map((node) => `${node.host}:${node.port}`));
  if (named === null || sameSet(named, known)) return false;
  const root = roots.find((node) => named.has(`${node.host}:${node.port}`)) ?? roots[0];
  await slots.rediscover({ options: { socket: { host: root.host, port: root.port } } });
  return true;
}

// The masters `CLUSTER SLOTS` names, from the first root that answers; null when none does.
async function mastersNamed(
  roots: readonly Node[],
  password: string | undefined,
): Promise<Set<string> | null> {
  for (const root of roots) {
    const client = createClient({
      password,
      socket: { host: root.host, port: root.port, connectTimeout: 500, reconnectStrategy: false },
    });
    client.on("error", () => {});
    try {
      // Bounded as a whole: a node that accepts and then says nothing (stopped, not dead) must
      // not hold the probe, nor keep the next roots from being asked.
      const ranges = await withTimeout(
        client.connect().then(() => client.sendCommand(["CLUSTER", "SLOTS"])),
        ROOT_ANSWER_MS,
        "no answer in time",
      ) as unknown[][];
      return new Set(ranges.map((range) => {
        const [host, port] = range[2] as [string, number];
        return `${host}:${port}`;
      }));
    } catch {
      // down too: the next root
    } finally {
      try {
        client.destroy();
      } catch {
        // never connected
      }
    }
  }
  return null;
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}

// Node clients already watched: one listener each, whatever the channels on them.
const watched = new WeakSet<object>();

/**
 * Calls `moved(channel)` once the slot map was read again after Redis dropped `cluster`'s
 * sharded subscription to `channel` (or another channel on the same node): the caller
 * subscribes it again, on the node that owns its slot now.
 */
export async function onShardedChannelMoved(
  cluster: ClusterClient,
  channel: string,
  moved: (channel: string) => void,
  failed: (error: unknown) => void,
): Promise<void> {
  const slots = slotsOf(cluster);
  if (slots === null) return;
  const node = await slots.getShardedPubSubClient(channel);
  if (watched.has(node)) return;
  watched.add(node);
  node.on("sharded-channel-moved", (movedChannel) => {
    slots.rediscover({ options: node.options }).then(() => moved(movedChannel), failed);
  });
}
