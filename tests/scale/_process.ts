/**
 * Real server processes for the scale-out tests: `deno run main.ts` as a child, its output
 * kept for assertions, every wait bounded, and `await using` kills it (SIGKILL) if a test
 * left it running.
 *
 * @example
 * ```ts
 * await using a = await startServerProcess({ LAYER: "redis", REDIS_URL: redis.url });
 * const socket = await TestSocket.open(a.wsUrl("/ws/chat/lobby/"));
 * ```
 */

import { Waiters } from "../_support/waiters.ts";

/** How long a server may take to print that it listens. */
export const START_TIMEOUT_MS = 30_000;

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** The deno flags `deno task start` runs with (deno.json), so servers run as it runs them. */
export const START_FLAGS: string[] = (JSON.parse(
  Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)),
).tasks.start as string).split(" ").filter((word) => word.startsWith("--"));

/** A server running as a child process. */
export interface ServerProcess extends AsyncDisposable {
  readonly url: string;
  readonly pid: number;
  /** `ws://host:port` + `path`. */
  wsUrl(path: string): string;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves once its output matches `pattern`; rejects after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal (SIGTERM, SIGINT, SIGKILL). */
  signal(signal: Deno.Signal): void;
  /** Resolves with its exit status. */
  readonly status: Promise<Deno.CommandStatus>;
}

/** Environment every test server gets: fast password hashing and short grace periods. */
export const TEST_ENV: Record<string, string> = {
  PASSWORD_ITERATIONS: "1000",
  ALLOW_WEAK_PASSWORD_HASHING: "true",
  PRESENCE_GRACE_MS: "300",
  LOG_LEVEL: "info",
};

/**
 * Starts `deno run main.ts` with `env` (on top of {@linkcode TEST_ENV}, port 0 and a fresh
 * data directory unless given) and waits until it listens.
 */
export async function startServerProcess(
  env: Record<string, string> = {},
  args: string[] = [],
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  const dataDir = env.DATA_DIR ?? await Deno.makeTempDir({ prefix: "scale-test-" });
  const child = spawnServer(env, args, dataDir, options);
  const collected = new Collector();
  void collected.drain(child.stdout);
  void collected.drain(child.stderr);
  // A directory made here is removed with the process; one passed in belongs to the caller.
  const process = makeProcess(child, collected, env.DATA_DIR ? null : dataDir);
  try {
    const line = await Promise.race([
      process.waitForOutput(/Serving the chat at (http:\/\/\S+)\/chat\//, START_TIMEOUT_MS),
      child.status.then((status) => {
        throw new Error(`Server exited with ${status.code} at start:\n${collected.text}`);
      }),
    ]);
    const url = line.match(/Serving the chat at (http:\/\/\S+)\/chat\//)![1];
    return { ...process, url, wsUrl: (path) => url.replace(/^http/, "ws") + path };
  } catch (error) {
    await process[Symbol.asyncDispose]();
    throw error;
  }
}

/** Runs `deno run main.ts` to its end (for servers that must refuse to start). */
export async function runServerToExit(
  env: Record<string, string>,
  timeoutMs = START_TIMEOUT_MS,
): Promise<{ code: number; output: string }> {
  const dataDir = env.DATA_DIR ?? await Deno.makeTempDir({ prefix: "scale-test-" });
  const child = spawnServer(env, [], dataDir);
  const collected = new Collector();
  const drained = Promise.all([collected.drain(child.stdout), collected.drain(child.stderr)]);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const status = await child.status;
  clearTimeout(timer);
  await drained;
  // A directory passed in belongs to the caller.
  if (env.DATA_DIR === undefined) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  return { code: status.code, output: collected.text };
}

/** How the server process is started. */
export interface SpawnOptions {
  /** The most file descriptors it may hold (`ulimit -n`); default: what this process has. */
  fileLimit?: number;
  /** The entry module to run instead of `main.ts` (a test's own, that starts the site). */
  main?: string;
}

function spawnServer(
  env: Record<string, string>,
  args: string[],
  dataDir: string,
  options: SpawnOptions = {},
): Deno.ChildProcess {
  const command = [Deno.execPath(), "run", ...START_FLAGS, options.main ?? MAIN, ...args];
  const limited = options.fileLimit !== undefined;
  // bash sets the limit and then becomes the server (`exec`), so the pid is the server's.
  const shellCommand = `ulimit -n ${options.fileLimit} && exec "$@"`;
  return new Deno.Command(limited ? "bash" : command[0], {
    args: limited ? ["-c", shellCommand, "bash", ...command] : command.slice(1),
    env: { PORT: "0", ...TEST_ENV, ...env, DATA_DIR: dataDir },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function makeProcess(
  child: Deno.ChildProcess,
  collected: Collector,
  ownDataDir: string | null,
): Omit<ServerProcess, "url" | "wsUrl"> {
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    return status;
  });
  return {
    pid: child.pid,
    output: () => collected.text,
    waitForOutput: (pattern, timeoutMs = 15_000) => collected.waitFor(pattern, timeoutMs),
    signal(signal) {
      if (!exited) child.kill(signal);
    },
    status,
    async [Symbol.asyncDispose]() {
      if (!exited) child.kill("SIGKILL");
      await status;
      await collected.done;
      if (ownDataDir) await Deno.remove(ownDataDir, { recursive: true }).catch(() => {});
    },
  };
}

class Collector {
  text = "";
  #waiters = new Waiters();
  #open = 0;
  #finished = Promise.withResolvers<void>();
  readonly done = this.#finished.promise;

  async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    this.#open++;
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.text += chunk;
        this.#waiters.notify();
      }
    } catch {
      // the child was killed mid-write
    } finally {
      if (--this.#open === 0) this.#finished.resolve();
    }
  }

  waitFor(pattern: RegExp, timeoutMs: number): Promise<string> {
    return this.#waiters.waitFor(
      () => this.text.match(pattern)?.[0],
      timeoutMs,
      () => `No output matching ${pattern} within ${timeoutMs} ms:\n${this.text}`,
    );
  }
}
