/**
 * Redis connections for the layer, presence and the store, in one of three forms: a plain URL,
 * a Sentinel set (node-redis' `createSentinel`) or a Cluster (`createCluster`). A bounded first
 * connect fails with the target in its message; after it, every connection runs the
 * {@linkcode RedisConnectionMachine}: one "lost" line per outage, and "restored" only once a
 * PING has succeeded on the connection again.
 *
 * Why "ready" is not enough: node-redis sends its handshake (`CLIENT SETINFO`) on a fresh socket
 * and ignores the handshake's failures. A socket that reached a Redis still going down therefore
 * dies during the handshake, the failures are swallowed, and node-redis declares the dead socket
 * ready. Its socket listeners have fired already, so it never reports an error or reconnects
 * again: a zombie. The machine catches it (the PING fails while the client says it is ready)
 * and restarts the client.
 */
import { createClient, createCluster, createSentinel } from "redis";
import { log } from "../telemetry/log.ts";
import { trackRedisConnection } from "./redis_health.ts";

/** A connected node-redis client. A Sentinel or Cluster connection answers the same commands. */
export type RedisClient = ReturnType<typeof createClient>;

/** One Redis server or Sentinel address. */
export interface RedisNodeAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}

/**
 * Which Redis to use: one server by URL, a master found through Sentinels, or a Cluster found
 * through seed nodes. A Cluster routes each command by its key's hash slot, so keys a command
 * or transaction touches together must share a hash tag (`{…}`).
 */
export type RedisForm =
  | { kind: "url"; url: string }
  | {
    kind: "sentinel";
    /** The master's name in the Sentinels' configuration, e.g. `mymaster`. */
    masterName: string;
    /** Some of the Sentinels; they name the others, the master and its replicas. */
    sentinels: RedisNodeAddress[];
    /** The password of the master and replicas, when they need one. */
    password?: string;
  }
  | {
    kind: "cluster";
    /** Some of the Cluster's nodes; they name the others. */
    nodes: RedisNodeAddress[];
    /** The nodes' password, when they need one. */
    password?: string;
  };

/** How a connection behaves. */
export interface RedisConnectOptions {
  /** Names the connection in log lines, e.g. "layer commands". */
  name: string;
  /**
   * Queue commands while disconnected and send them on reconnect (the subscriber wants
   * this: its subscriptions survive). Without it a command fails at once while Redis is away.
   */
  offlineQueue?: boolean;
  /** How long the first connect may take before it fails (default 5 s). */
  connectTimeoutMs?: number;
  /** Called each time the connection is restored after an outage (a PING succeeded). */
  onReconnect?: () => void;
}

/** Where a connection is in its life; see {@linkcode RedisConnectionMachine}. */
export type RedisConnectionState = "connecting" | "ready" | "lost" | "restoring" | "closed";

const MAX_BACKOFF_MS = 5000;
const PROBE_TIMEOUT_MS = 2000;

/** Removes a password from a Redis URL before it is logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

/** How a form is shown in messages and logs, without its password. */
export function describeRedisForm(target: string | RedisForm): string {
  const form = toForm(target);
  const list = (nodes: RedisNodeAddress[]) => nodes.map((n) => `${n.host}:${n.port}`).join(",");
  if (form.kind === "url") return redactUrl(form.url);
  if (form.kind === "sentinel") return `sentinel ${form.masterName}@${list(form.sentinels)}`;
  return `cluster ${list(form.nodes)}`;
}

/** The target of options with a `url` and/or a `form`: `form` wins; a `TypeError` if neither. */
export function redisTarget(options: { url?: string; form?: RedisForm }): string | RedisForm {
  const target = options.form ?? options.url;
  if (target === undefined || target === "") {
    throw new TypeError("Redis options need a `url` or a `form`");
  }
  return target;
}

/**
 * Whether `target` is one Redis server reached by URL: the one form where a connection's own
 * commands (`CLIENT ID`, `CLIENT UNBLOCK`) name a single, known connection.
 */
export function isSingleRedisServer(target: string | RedisForm): boolean {
  return toForm(target).kind === "url";
}

/** Whether `target` is a Redis Cluster (sharded pub/sub, hash tags). */
export function isRedisCluster(target: string | RedisForm): boolean {
  return toForm(target).kind === "cluster";
}

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
    destroyQuietly(made.client);
    const message = (error as Error).message;
    throw new Error(
      message.includes(shown) ? message : `Cannot connect to Redis at ${shown}: ${message}`,
    );
  }
  flags.verified = true;
  machine.connected();
  machines.set(made.client, machine);
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

/** Closes a client after its pending commands, waiting at most `ms` for them. */
export async function closeRedis(client: RedisClient, ms = 1000): Promise<void> {
  const ready = isRedisReady(client);
  const machine = machines.get(client);
  machine?.close();
  if (machine) untrack.get(machine)?.();
  machines.delete(client);
  if (!client.isOpen) return;
  if (!ready) {
    destroyQuietly(client); // nothing can be flushed; stop the reconnect loop now
    return;
  }
  const closed = await withTimeout(client.close(), ms, "Redis did not close in time")
    .then(() => true, () => false);
  if (!closed) destroyQuietly(client);
}

/** Rejects with `message` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timedOut]).finally(() => clearTimeout(timer));
}

/** What the machine needs from a connection: a command to try, and a way to start over. */
export interface RedisProbe {
  /** Sends one command (PING) on the connection; resolves once Redis answered. */
  ping(): Promise<unknown>;
  /** Whether the client believes its socket is ready (a zombie believes so too). */
  readonly isReady: boolean;
  /** Drops the socket and connects again; used when a "ready" connection cannot PING. */
  restart?(): void;
}

/** Timers for the machine; tests pass a fake clock. */
export interface MachineClock {
  /** Schedules `callback` after `ms`. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels what `setTimeout` returned. */
  clearTimeout(handle: unknown): void;
  /** The time in ms. */
  now(): number;
}

/** Options of {@linkcode RedisConnectionMachine}. */
export interface RedisConnectionMachineOptions {
  /** Names the connection in log lines. */
  name: string;
  /** The target as shown in log lines (no password). */
  target: string;
  /** Called each time the connection is restored. */
  onRestored?: () => void;
  /** Timers (default: the real ones). */
  clock?: MachineClock;
  /** How long a PING may take before it counts as failed (default 2 s). */
  probeTimeoutMs?: number;
}

const realClock: MachineClock = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
  now: () => Date.now(),
};

/**
 * The reconnection state machine every Redis connection runs.
 *
 * ```
 * connecting ──connected──▶ ready ──failed──▶ lost ──readied / backoff──▶ restoring
 *                             ▲                 ▲                              │
 *                             └──PING answered──┼──────────────────────────────┘
 *                                               └──────PING failed─────────────┘
 * ```
 *
 * - "lost" is logged once, on leaving `ready`; "restored" once, on reaching it again. A client
 *   that flaps while Redis is going down stays lost without new lines.
 * - Only a PING that Redis answered moves a connection to `ready`; a client's own "ready" event
 *   just starts a PING. While lost, a PING is also tried on a capped backoff, so a connection
 *   whose client stopped reporting (see the module doc) is still found again.
 * - A PING that fails while the client says it is ready means its socket is dead: the
 *   connection is restarted.
 */
export class RedisConnectionMachine {
  #state: RedisConnectionState = "connecting";
  #probe: RedisProbe;
  #options: RedisConnectionMachineOptions;
  #clock: MachineClock;
  #attempt = 0;
  #timer: unknown = null;
  /** Increases with every PING, so the answer of an outdated one is ignored. */
  #epoch = 0;
  #lostSince: number | null = null;
  /** Outages it came back from, and their milliseconds (the metrics read them). */
  restoredCount = 0;
  downMsRestored = 0;

  /** Watches the connection that `probe` reaches. */
  constructor(probe: RedisProbe, options: RedisConnectionMachineOptions) {
    this.#probe = probe;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
  }

  /** Where the connection is. */
  get state(): RedisConnectionState {
    return this.#state;
  }

  /** The connection's name in log lines and metrics. */
  get name(): string {
    return this.#options.name;
  }

  /** True while `ready`. */
  get up(): boolean {
    return this.#state === "ready";
  }

  /** When the current outage began (ms), or `null` while not lost. */
  get lostSince(): number | null {
    return this.#lostSince;
  }

  /** The first connect succeeded (a PING was answered). */
  connected(): void {
    if (this.#state === "connecting") this.#state = "ready";
  }

  /** The client reported an error: a ready connection is lost until a PING succeeds. */
  failed(error: unknown): void {
    if (this.#state === "ready") {
      this.#state = "lost";
      this.#lostSince = this.#clock.now();
      log.warn(
        `Redis connection (${this.#options.name}) to ${this.#options.target} lost; ` +
          `reconnecting: ${describe(error)}`,
      );
      this.#schedule();
    } else if (this.#state === "restoring") {
      this.#epoch++; // the PING in flight went out on the socket that just failed
      this.#state = "lost";
      this.#schedule();
    }
  }

  /** The client says it is ready again: try a PING now. */
  readied(): void {
    if (this.#state === "lost") this.#tryPing();
  }

  /** Stops every timer; the machine ignores the client from now on. */
  close(): void {
    this.#state = "closed";
    this.#epoch++;
    this.#cancel();
  }

  #schedule(): void {
    this.#cancel();
    const backoff = Math.min(100 * 2 ** Math.min(this.#attempt, 10), MAX_BACKOFF_MS);
    this.#attempt++;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#state === "lost") this.#tryPing();
    }, backoff);
  }

  #cancel(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #tryPing(): void {
    this.#cancel();
    this.#state = "restoring";
    const epoch = ++this.#epoch;
    let timer: unknown = null;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(
        () => reject(new Error("no answer in time")),
        this.#options.probeTimeoutMs ?? PROBE_TIMEOUT_MS,
      );
    });
    let pinging: Promise<unknown>;
    try {
      pinging = Promise.resolve(this.#probe.ping());
    } catch (error) {
      pinging = Promise.reject(error);
    }
    Promise.race([pinging, timedOut]).then(
      () => this.#answered(epoch),
      () => this.#unanswered(epoch),
    ).finally(() => this.#clock.clearTimeout(timer));
    pinging.catch(() => {}); // a late failure after the timeout is expected
  }

  #answered(epoch: number): void {
    if (epoch !== this.#epoch || this.#state !== "restoring") return;
    this.#state = "ready";
    this.#attempt = 0;
    const downMs = this.#clock.now() - (this.#lostSince ?? this.#clock.now());
    this.#lostSince = null;
    this.restoredCount++;
    this.downMsRestored += downMs;
    log.info(
      `Redis connection (${this.#options.name}) to ${this.#options.target} restored ` +
        `after ${downMs} ms`,
    );
    this.#options.onRestored?.();
  }

  #unanswered(epoch: number): void {
    if (epoch !== this.#epoch || this.#state !== "restoring") return;
    this.#state = "lost";
    // The client thinks its socket works, yet Redis did not answer: it will not notice alone.
    if (this.#probe.isReady) this.#probe.restart?.();
    this.#schedule();
  }
}

/** Connections made by connectRedis and their machines, for closeRedis and the status. */
const machines = new WeakMap<RedisClient, RedisConnectionMachine>();
/** How each machine leaves the metrics' list of open connections (`redis_health.ts`). */
const untrack = new WeakMap<RedisConnectionMachine, () => void>();

interface MadeClient {
  client: RedisClient;
  probe: RedisProbe;
  connect(): Promise<unknown>;
  /** Feeds the client's events to the machine. */
  watch(machine: RedisConnectionMachine): void;
}

function toForm(target: string | RedisForm): RedisForm {
  return typeof target === "string" ? { kind: "url", url: target } : target;
}

function makeClient(
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
          return new Error(`Cannot connect to Redis at ${shown}: ${describe(cause)}`);
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
  };
}

function makeSentinel(
  form: Extract<RedisForm, { kind: "sentinel" }>,
  options: RedisConnectOptions,
  timeout: number,
): MadeClient {
  const sentinel = createSentinel({
    name: form.masterName,
    sentinelRootNodes: form.sentinels,
    // A lost master is rediscovered a few times per command before the command fails.
    maxCommandRediscovers: 3,
    nodeClientOptions: {
      disableOfflineQueue: !options.offlineQueue,
      password: form.password,
      socket: { connectTimeout: timeout },
    },
    sentinelClientOptions: { socket: { connectTimeout: timeout } },
  });
  sentinel.on("error", () => {}); // node-redis reports rediscovery here; the machine logs
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
      sentinel.on("client-error", (event: { type: string; error: Error }) => {
        if (event.type === "MASTER" || event.type === "PUBSUBPROXY") machine.failed(event.error);
      });
      sentinel.on("topology-change", (event: { type: string }) => {
        if (event.type === "MASTER_CHANGE") machine.readied();
      });
    },
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
      // Every master must answer: a cluster missing one cannot serve that node's slots.
      async ping() {
        const masters = cluster.masters;
        if (masters.length === 0) throw new Error("no masters known");
        await Promise.all(masters.map(async (node) => (await cluster.nodeClient(node)).ping()));
      },
      get isReady() {
        return false; // node-redis restarts its node clients itself
      },
    },
    watch(machine) {
      cluster.on("node-error", (error: Error) => machine.failed(error));
      cluster.on("node-ready", () => machine.readied());
    },
  };
}

function destroyQuietly(client: RedisClient): void {
  try {
    // The Sentinel's destroy is async; its failure means it was closed already.
    const destroyed = client.destroy() as unknown;
    if (destroyed instanceof Promise) destroyed.catch(() => {});
  } catch {
    // already closed
  }
}

function describe(error: unknown): string {
  const message = (error as Error)?.message;
  if (message) return message;
  // node's AggregateError (IPv4 and IPv6 both refused) has no message of its own
  const inner = (error as { errors?: Error[] })?.errors?.[0]?.message;
  return inner ?? String(error);
}
