/**
 * A redis-server of the bench's own, with its process measured: the Redis layer's rounds count
 * the CPU of the server under test and of its redis-server together.
 */
import { startRedisServer } from "../../tests/_support/redis.ts";
import { processTree, type ProcSample, sampleProcess } from "../_proc.ts";
import { OURS, type ServerTarget } from "../_servers.ts";
import { DEFAULT_REDIS_LINGER_MS } from "../../server/config.ts";

/** A private redis-server on a free port, and readings of its process. */
export interface BenchRedis extends AsyncDisposable {
  readonly url: string;
  readonly pid: number;
  /** Its CPU time and memory now. */
  sample(): ProcSample;
}

/** Starts an empty redis-server (no persistence) for a scenario; `await using` stops it. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const server = await startRedisServer();
  const pid = redisPid(server.port);
  if (pid === null) {
    await server.stop();
    throw new Error(`The redis-server on port ${server.port} is not among the bench's processes`);
  }
  return {
    url: server.url,
    pid,
    sample: () => sampleProcess(pid),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

/**
 * Ours on the Redis layer of `redis`, its keys under `prefix`; named `name`; with `lingerMs`,
 * its scripts wait up to that long to share round trips (`REDIS_LINGER_MS`; 0: never) instead
 * of the default's.
 */
export function oursOnRedis(
  name: string,
  redis: BenchRedis,
  prefix: string,
  lingerMs?: number,
): ServerTarget {
  const linger: Record<string, string> = lingerMs === undefined
    ? {}
    : { REDIS_LINGER_MS: String(lingerMs) };
  return {
    ...OURS,
    name,
    env: { ...OURS.env, LAYER: "redis", REDIS_URL: redis.url, REDIS_PREFIX: prefix, ...linger },
    notes: [
      `${name}: as ours, with LAYER=redis on a redis-server the bench started (no persistence); ` +
      `its CPU and memory are counted with the server's` +
      (lingerMs === undefined
        ? `; REDIS_LINGER_MS at its default (${DEFAULT_REDIS_LINGER_MS} ms)`
        : `; REDIS_LINGER_MS=${lingerMs} (not the default): reported, not checked`),
    ],
  };
}

// The redis-server among this process's descendants that serves `port` (it names its address
// in its command line).
function redisPid(port: number): number | null {
  for (const pid of processTree(Deno.pid)) {
    try {
      const command = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
      if (command.includes("redis-server") && command.includes(`:${port}`)) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return null;
}
