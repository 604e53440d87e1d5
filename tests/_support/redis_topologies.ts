/**
 * Real Redis topologies for tests, made of private `redis-server` processes on free ports in a
 * temporary directory: a 3-master Cluster (`redis-cli --cluster create`, no replicas) and a
 * master with one replica watched by three Sentinels. Every wait is bounded; disposing kills
 * every process and removes the directory.
 *
 * @example
 * ```ts
 * await using cluster = await startRedisCluster();
 * const layer = await RedisLayer.open({ url: "", form: cluster.form, prefix });
 * ```
 */
import { createClient } from "redis";
import type { RedisForm } from "../../storage/redis_connection.ts";
import { redisServerArgs } from "./redis.ts";

/** A running topology. */
export interface RedisTopology extends AsyncDisposable {
  /** How a server connects to it. */
  readonly form: RedisForm;
  /** Kills every process at once and removes the directory, synchronously (an unload handler). */
  killNow(): void;
}

/** A Cluster of three masters (and, when asked, a replica of each). */
export interface RedisClusterTopology extends RedisTopology {
  /** The nodes' ports (with no replicas, the masters'). */
  readonly ports: number[];
  /** Kills the node on `port` with SIGKILL. */
  kill(port: number): Promise<void>;
  /**
   * Stops the node on `port` with SIGSTOP: its connections stay open and unanswered. Returns what
   * lets it go on (SIGCONT).
   */
  pause(port: number): { resume(): void };
}

/** A master, one replica and three Sentinels watching them as `mymaster`. */
export interface RedisSentinelTopology extends RedisTopology {
  /** The port of the server that is master now (asks the Sentinels). */
  masterPort(): Promise<number>;
  /** Kills the current master with SIGKILL; the Sentinels then promote the replica. */
  killMaster(): Promise<number>;
  /**
   * Stops the current master with SIGSTOP: its connections stay open and unanswered, and the
   * Sentinels promote the replica. Returns what lets it go on (SIGCONT).
   */
  pauseMaster(): Promise<{ resume(): void }>;
}

const WAIT_MS = 20_000;

/** Whether the binaries the topologies need are installed. */
export async function topologiesAvailable(): Promise<{ available: boolean; reason: string }> {
  for (const binary of ["redis-server", "redis-cli"]) {
    try {
      const { success } = await new Deno.Command(binary, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (!success) return { available: false, reason: `\`${binary} --version\` failed` };
    } catch {
      return { available: false, reason: `${binary} is not installed` };
    }
  }
  return { available: true, reason: "" };
}

/** Registers a skip reason, or fails under CI=true, when topologies cannot run here. */
export async function requireTopologies(): Promise<boolean> {
  const { available, reason } = await topologiesAvailable();
  if (available) return true;
  if (Deno.env.get("CI") === "true") throw new Error(`Redis topologies cannot run: ${reason}`);
  console.log(`Skipping Redis topology tests: ${reason}`);
  return false;
}

/**
 * Starts three cluster-enabled masters and joins them with `redis-cli --cluster create`; with
 * `replicas: 1`, a replica of each too, and a node timeout of 1 s, so that a dead master's
 * replica takes its place within a few seconds.
 */
export async function startRedisCluster(
  options: { replicas?: 0 | 1 } = {},
): Promise<RedisClusterTopology> {
  const group = await ProcessGroup.create("cluster");
  try {
    const replicas = options.replicas ?? 0;
    const ports = freePorts(3 * (1 + replicas));
    const servers = new Map<number, Deno.ChildProcess>();
    for (const port of ports) {
      servers.set(
        port,
        await group.server(port, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `n${port}.conf`,
          ...(replicas > 0 ? ["--cluster-node-timeout", "1000"] : []),
        ]),
      );
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((port) => `127.0.0.1:${port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    await waitFor(async () => {
      for (const port of ports) {
        const info = await command(port, ["CLUSTER", "INFO"]);
        if (!String(info).includes("cluster_state:ok")) return false;
      }
      return true;
    }, "the cluster to reach cluster_state:ok");
    // A replica that never synced may not take its master's place: wait for every link.
    await waitFor(async () => {
      for (const port of ports) {
        const info = String(await command(port, ["INFO", "replication"]));
        if (info.includes("role:slave") && !info.includes("master_link_status:up")) return false;
      }
      return true;
    }, "every replica to sync with its master");
    return {
      ports,
      form: { kind: "cluster", nodes: ports.map((port) => ({ host: "127.0.0.1", port })) },
      async kill(port) {
        const child = servers.get(port);
        if (!child) throw new Error(`No node of this cluster on port ${port}`);
        child.kill("SIGKILL");
        await child.status;
      },
      pause(port) {
        const child = servers.get(port);
        if (!child) throw new Error(`No node of this cluster on port ${port}`);
        child.kill("SIGSTOP");
        return { resume: () => child.kill("SIGCONT") };
      },
      killNow: () => group.killNow(),
      [Symbol.asyncDispose]: () => group.dispose(),
    };
  } catch (error) {
    await group.dispose();
    throw error;
  }
}

/** Starts a master, a replica of it, and three Sentinels (quorum 2) that fail over in ~1 s. */
export async function startRedisSentinel(): Promise<RedisSentinelTopology> {
  const group = await ProcessGroup.create("sentinel");
  try {
    const [masterPort, replicaPort, ...sentinelPorts] = freePorts(5);
    const servers = new Map<number, Deno.ChildProcess>();
    servers.set(masterPort, await group.server(masterPort, []));
    servers.set(
      replicaPort,
      await group.server(replicaPort, ["--replicaof", "127.0.0.1", String(masterPort)]),
    );
    await waitFor(
      async () =>
        String(await command(replicaPort, ["INFO", "replication"])).includes(
          "master_link_status:up",
        ),
      "the replica to sync",
    );
    for (const port of sentinelPorts) {
      await group.sentinel(port, masterPort, [
        "sentinel monitor mymaster 127.0.0.1 %MASTER% 2",
        "sentinel down-after-milliseconds mymaster 1000",
        "sentinel failover-timeout mymaster 5000",
        "sentinel parallel-syncs mymaster 1",
      ]);
    }
    await waitFor(async () => {
      for (const port of sentinelPorts) {
        const master = await command(port, ["SENTINEL", "MASTER", "mymaster"]) as string[];
        const fields = pairs(master);
        if (fields["num-other-sentinels"] !== "2" || fields["num-slaves"] !== "1") return false;
      }
      return true;
    }, "the Sentinels to find each other and the replica");
    const topology: RedisSentinelTopology = {
      form: {
        kind: "sentinel",
        masterName: "mymaster",
        sentinels: sentinelPorts.map((port) => ({ host: "127.0.0.1", port })),
      },
      async masterPort() {
        const address = await command(sentinelPorts[0], [
          "SENTINEL",
          "GET-MASTER-ADDR-BY-NAME",
          "mymaster",
        ]) as string[];
        return Number(address[1]);
      },
      async killMaster() {
        const port = await topology.masterPort();
        const child = servers.get(port);
        if (!child) throw new Error(`No server of this topology on port ${port}`);
        child.kill("SIGKILL");
        await child.status;
        return port;
      },
      async pauseMaster() {
        const port = await topology.masterPort();
        const child = servers.get(port);
        if (!child) throw new Error(`No server of this topology on port ${port}`);
        child.kill("SIGSTOP");
        return { resume: () => child.kill("SIGCONT") };
      },
      killNow: () => group.killNow(),
      [Symbol.asyncDispose]: () => group.dispose(),
    };
    return topology;
  } catch (error) {
    await group.dispose();
    throw error;
  }
}

/**
 * One Sentinel (quorum 1, slow to call a master down) watching the master it is told is at
 * `masterPort`: a proxy's port, say, to put a flaky link between the clients and the master.
 */
export async function startOneSentinel(masterPort: number): Promise<RedisTopology> {
  const group = await ProcessGroup.create("one-sentinel");
  try {
    const [port] = freePorts(1);
    await group.sentinel(port, masterPort, [
      "sentinel monitor mymaster 127.0.0.1 %MASTER% 1",
      "sentinel down-after-milliseconds mymaster 60000",
    ]);
    return {
      form: { kind: "sentinel", masterName: "mymaster", sentinels: [{ host: "127.0.0.1", port }] },
      killNow: () => group.killNow(),
      [Symbol.asyncDispose]: () => group.dispose(),
    };
  } catch (error) {
    await group.dispose();
    throw error;
  }
}

/** Processes started in one temporary directory, all killed together. */
class ProcessGroup {
  readonly dir: string;
  #children: Deno.ChildProcess[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(name: string): Promise<ProcessGroup> {
    return new ProcessGroup(await Deno.makeTempDir({ prefix: `redis-${name}-` }));
  }

  /** A redis-server on `port` with `extra` arguments, once it answers PING. */
  async server(port: number, extra: string[]): Promise<Deno.ChildProcess> {
    const args = [...redisServerArgs(port), "--dir", this.dir, ...extra];
    return await this.spawn(port, "redis-server", args);
  }

  /** A Sentinel on `port` with `rules` (`%MASTER%` stands for `masterPort`), once it answers. */
  async sentinel(port: number, masterPort: number, rules: string[]): Promise<void> {
    const file = `${this.dir}/sentinel-${port}.conf`;
    const lines = [`port ${port}`, "bind 127.0.0.1", `dir ${this.dir}`, ...rules, ""];
    await Deno.writeTextFile(file, lines.join("\n").replaceAll("%MASTER%", String(masterPort)));
    await this.spawn(port, "redis-server", [file, "--sentinel"]);
  }

  async spawn(port: number, binary: string, args: string[]): Promise<Deno.ChildProcess> {
    const child = new Deno.Command(binary, { args, stdout: "null", stderr: "null" }).spawn();
    this.#children.push(child);
    let exited = false;
    child.status.then(() => exited = true);
    await waitFor(async () => {
      if (exited) throw new Error(`${binary} on port ${port} exited at start`);
      return await command(port, ["PING"]) === "PONG";
    }, `${binary} on port ${port} to answer`);
    return child;
  }

  async dispose(): Promise<void> {
    const children = this.#children;
    this.#kill();
    await Promise.all(children.map((child) => child.status));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  killNow(): void {
    this.#kill();
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch {
      // removed already, or a dying process still writes there: it is a temporary directory
    }
  }

  #kill(): void {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited already
      }
    }
    this.#children = [];
  }
}

/** One command on a fresh connection; `null` when the server does not answer. */
async function command(port: number, args: string[]): Promise<unknown> {
  const client = createClient({
    socket: { host: "127.0.0.1", port, connectTimeout: 1000, reconnectStrategy: false },
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.sendCommand(args);
  } catch {
    return null;
  } finally {
    try {
      client.destroy();
    } catch {
      // never opened
    }
  }
}

async function run(binary: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    throw new Error(`${binary} ${args.join(" ")} failed: ${text}`);
  }
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Waited ${WAIT_MS} ms for ${what}`);
}

function pairs(list: string[] | null): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; list && i + 1 < list.length; i += 2) fields[list[i]] = list[i + 1];
  return fields;
}

function freePorts(count: number): number[] {
  // Held open together, so the ports differ; a port of a cluster node + 10000 must be free too.
  const listeners: Deno.Listener[] = [];
  const ports: number[] = [];
  while (ports.length < count) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    listeners.push(listener);
    const port = (listener.addr as Deno.NetAddr).port;
    if (port + 10000 > 65535) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port: port + 10000 }).close();
      ports.push(port);
    } catch {
      // the bus port is taken: try another
    }
  }
  for (const listener of listeners) listener.close();
  return ports;
}
