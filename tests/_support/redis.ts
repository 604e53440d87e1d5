/**
 * Redis for tests: a private `redis-server` on a free port that a test may stop and restart,
 * or the server named by `REDIS_URL`.
 *
 * When neither is possible the tests are skipped with a printed reason, except under
 * `CI=true`, where a missing Redis fails the run: nothing is skipped in CI.
 *
 * @example
 * ```ts
 * const redis = await redisAvailability();
 * Deno.test({ name: "…", ignore: !redis.available, fn: async () => {
 *   await using server = await startRedisServer();
 * } });
 * ```
 */
import { createClient } from "redis";

/** Whether Redis tests can run here, and why not. */
export interface RedisAvailability {
  available: boolean;
  reason: string;
}

/** A private redis-server process. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port: empty, or with its last snapshot when it has a `dir`. */
  restart(): Promise<void>;
  /**
   * Freezes it (SIGSTOP): it still accepts TCP connections (the kernel does), and answers
   * nothing until {@linkcode resume}, as a Redis on a stalled machine does.
   */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

const cached = new Map<boolean, Promise<RedisAvailability>>();

/**
 * Finds out once whether Redis tests can run: `REDIS_URL` is set or `redis-server` can be
 * started (only the latter with `privateServer`, for tests that stop and restart it).
 * Prints the reason to skip; throws under `CI=true` instead.
 */
export function redisAvailability(
  options: { privateServer?: boolean } = {},
): Promise<RedisAvailability> {
  const privateServer = options.privateServer ?? false;
  let found = cached.get(privateServer);
  if (found) return found;
  found = (async () => {
    const result = await probe(privateServer);
    if (!result.available) {
      if (Deno.env.get("CI") === "true") {
        throw new Error(`Redis tests cannot run under CI=true: ${result.reason}`);
      }
      console.log(`Skipping Redis tests: ${result.reason}`);
    }
    return result;
  })();
  cached.set(privateServer, found);
  return found;
}

async function probe(privateServer: boolean): Promise<RedisAvailability> {
  if (!privateServer && Deno.env.get("REDIS_URL")) return { available: true, reason: "" };
  try {
    const { success } = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (success) return { available: true, reason: "" };
    return { available: false, reason: "`redis-server --version` failed" };
  } catch (error) {
    return {
      available: false,
      reason: `redis-server is not installed (${(error as Error).message})`,
    };
  }
}

/** Starts a private, empty redis-server on a free port; `await using` stops it. */
export async function startRedisServer(
  options: {
    /**
     * Where it keeps its snapshot (`dump.rdb`), written only by an explicit `SAVE`: a restart
     * loads it, as a Redis that crashed comes back with its last snapshot.
     */
    dir?: string;
  } = {},
): Promise<RedisServer> {
  let lastError: unknown = null;
  const extra = options.dir === undefined ? [] : ["--dir", options.dir];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    try {
      return await launch(port, extra);
    } catch (error) {
      lastError = error; // another process may have taken the port in between: try another
    }
  }
  throw new Error(`Could not start redis-server: ${(lastError as Error)?.message}`);
}

/**
 * A Redis for tests that do not stop it: `REDIS_URL` when set (shared, so use
 * {@linkcode uniquePrefix}), else a private server. `await using` releases it.
 */
export async function testRedisUrl(): Promise<{ url: string } & AsyncDisposable> {
  const url = Deno.env.get("REDIS_URL");
  if (url) return { url, [Symbol.asyncDispose]: () => Promise.resolve() };
  const server = await startRedisServer();
  return { url: server.url, [Symbol.asyncDispose]: server.stop };
}

/** A key prefix no other test uses, so tests can share one Redis. */
export function uniquePrefix(name = "test"): string {
  return `${name}-${crypto.randomUUID().slice(0, 8)}`;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function launch(port: number, extra: string[]): Promise<RedisServer> {
  let child: Deno.ChildProcess | null = await spawn(port, extra);
  const url = `redis://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    const running = child;
    if (running === null) return;
    child = null;
    await terminate(running);
  };
  return {
    url,
    port,
    stop,
    async restart() {
      await stop();
      child = await spawn(port, extra);
    },
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    [Symbol.asyncDispose]: stop,
  };
}

/** `redis-server` arguments for a test server on `port`: local only, nothing saved, quiet. */
export function redisServerArgs(port: number): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--loglevel",
    "warning",
  ];
}

async function spawn(port: number, extra: string[] = []): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("redis-server", {
    args: [...redisServerArgs(port), ...extra],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitUntilReady(port, child);
    return child;
  } catch (error) {
    await terminate(child);
    throw error;
  }
}

async function waitUntilReady(port: number, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`redis-server exited at start on port ${port}`);
    const client = createClient({
      url: `redis://127.0.0.1:${port}`,
      socket: { connectTimeout: 1000, reconnectStrategy: false },
    });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.ping();
      await client.quit();
      return;
    } catch {
      try {
        client.destroy();
      } catch {
        // never opened
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`redis-server on port ${port} was not ready within ${START_TIMEOUT_MS} ms`);
}

async function terminate(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGCONT"); // a paused server would not act on the SIGTERM
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, STOP_TIMEOUT_MS);
  await child.status;
  clearTimeout(timer);
}
