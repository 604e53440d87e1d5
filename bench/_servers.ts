/**
 * The servers under test, each started as its own process on a free loopback port, and
 * measured from the outside through /proc.
 *
 * A variant is data: `{ ...OURS, name: "ours-redis", env: { LAYER: "redis" } }` or
 * `{ ...OURS, name: "ours-2w", args: ["--workers", "2"] }` is all a later scenario needs.
 */
import { fromFileUrl, join } from "@std/path";
import { loadConfig } from "../server/config.ts";
import { START_TASK_FLAGS } from "./_start_task.ts";
import { processTree, type ProcSample, resetPeak, sampleProcess, sumSamples } from "./_proc.ts";

/** How to start one kind of server. */
export interface ServerTarget {
  /** Short name for reports: "raw", "ours". */
  name: string;
  /** Module to run, relative to the repository root. */
  module: string;
  /** Deno flags before the module. */
  denoFlags: string[];
  /** Arguments after the module; `--port <n>` is added. */
  args: string[];
  env: Record<string, string>;
  /** Gets a fresh temporary data directory in `DATA_DIR`. */
  dataDir: boolean;
  /** Said in the report, e.g. that the rate limit was raised. */
  notes: string[];
  /**
   * Runs `deno task <task>` from deno.json instead of `deno run denoFlags module args`; the
   * port then goes in `PORT`, as a user would set it.
   */
  task?: string;
  /**
   * Passes on none of the server's settings that the bench's own environment may hold, and
   * checks at start that every setting but the port and `DATA_DIR` is at its default (so
   * `env` must set none).
   */
  defaultConfig?: boolean;
  /**
   * With `defaultConfig`: configuration keys `env` may set all the same (each one said in
   * `notes`), e.g. the per-address connection cap that a bench whose clients all come from
   * 127.0.0.1 cannot stay under.
   */
  defaultsExcept?: string[];
  /** Sends what the server prints on stdout to /dev/null instead of keeping its last lines. */
  stdoutToNull?: boolean;
  /**
   * An executable to run instead of Deno (a server that is not ours, e.g. `/usr/bin/python3`
   * for Daphne): it gets `args` alone, each `{port}` in them replaced by the port; `module`
   * and `denoFlags` then only describe it.
   */
  command?: string;
  /** Working directory, relative to the repository root (default: the root). */
  cwd?: string;
}

/** Rate limit used for our server: far above any bench sender, which sends faster than 20/s. */
export const BENCH_RATE_LIMIT = 1_000_000;

/** The raw `Deno.serve` broadcast server, the baseline. */
export const RAW: ServerTarget = {
  name: "raw",
  module: "bench/raw_server.ts",
  denoFlags: ["-A"],
  args: [],
  env: {},
  dataDir: false,
  notes: ["raw: bench/raw_server.ts, Deno.serve + Map<room, Set<WebSocket>>, no limits"],
};

/**
 * This project's server, with the deno flags `deno task start` runs it with, history in Deno KV
 * and the bench's settings below.
 */
export const OURS: ServerTarget = {
  name: "ours",
  module: "main.ts",
  denoFlags: [...START_TASK_FLAGS],
  args: [],
  env: {
    LOG_LEVEL: "warn",
    RATE_LIMIT: String(BENCH_RATE_LIMIT),
    RATE_BURST: String(BENCH_RATE_LIMIT),
    MAX_CONNECTIONS_PER_ADDRESS: "0",
  },
  dataDir: true,
  notes: [
    `ours: main.ts with LOG_LEVEL=warn, a fresh DATA_DIR (history in Deno KV), ` +
    `RATE_LIMIT=RATE_BURST=${BENCH_RATE_LIMIT} (default 20/s, burst 40: bench senders exceed it), ` +
    `MAX_CONNECTIONS_PER_ADDRESS=0 (default 256: every bench client comes from 127.0.0.1); ` +
    `other limits at their defaults`,
  ],
};

/**
 * This project's server exactly as `deno task start` runs it: the `start` task of deno.json
 * (its deno flags), every setting at its default (`info` logs, 20 messages/s per socket and a
 * burst of 40) but the port and a fresh `DATA_DIR`; its stdout, the `info` log, to /dev/null.
 */
export const OURS_AS_STARTED: ServerTarget = {
  name: "ours",
  module: "main.ts",
  denoFlags: [],
  args: [],
  env: {},
  dataDir: true,
  notes: [
    "ours: `deno task start` with only PORT and a fresh DATA_DIR set, every other setting at " +
    "its default (LOG_LEVEL=info, RATE_LIMIT=20, RATE_BURST=40); its stdout (the info log) " +
    "to /dev/null",
  ],
  task: "start",
  defaultConfig: true,
  stdoutToNull: true,
};

/** A started server process. */
export interface ServerProcess extends AsyncDisposable {
  readonly name: string;
  readonly port: number;
  /** The process started, then every process it started (a multi-process server's servers). */
  readonly pids: number[];
  /** `performance.now()` when the process was spawned. */
  readonly spawnedAt: number;
  /** When its port first accepted a connection: ms after the spawn, and CPU ms used by then. */
  readonly ready: { ms: number; cpuMs: number };
  /** CPU and memory summed over `pids` (CPU of a process that has exited is not counted). */
  sample(): ProcSample;
  /** Restarts the peak-memory mark; false when the kernel does not allow it. */
  resetPeak(): boolean;
  /** The last lines the server printed (for diagnosing a failed run). */
  output(): string;
  stop(): Promise<void>;
}

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const START_TIMEOUT_MS = 20_000;

/** Starts `target` with extra `env`/`args` and resolves once its port accepts connections. */
export async function startServerProcess(
  target: ServerTarget,
  options: { env?: Record<string, string>; args?: string[] } = {},
): Promise<ServerProcess> {
  const port = freePort();
  const dataDir = target.dataDir ? await Deno.makeTempDir({ prefix: "channels-bench-" }) : null;
  const env = {
    ...(target.defaultConfig ? withoutSettings(Deno.env.toObject()) : {}),
    ...target.env,
    ...(dataDir ? { DATA_DIR: dataDir } : {}),
    ...(target.task !== undefined ? { PORT: String(port) } : {}),
    ...options.env,
  };
  if (target.defaultConfig) assertDefaults(env, target.defaultsExcept ?? []);
  const args = target.command !== undefined
    ? [...target.args, ...(options.args ?? [])].map((arg) => arg.replaceAll("{port}", `${port}`))
    : target.task !== undefined
    ? ["task", target.task, ...target.args, ...(options.args ?? [])]
    : [
      "run",
      ...target.denoFlags,
      target.module,
      ...target.args,
      ...(options.args ?? []),
      "--port",
      String(port),
    ];
  const spawnedAt = performance.now();
  const child = new Deno.Command(target.command ?? Deno.execPath(), {
    args,
    cwd: target.cwd !== undefined ? join(ROOT, target.cwd) : ROOT,
    env,
    clearEnv: target.defaultConfig === true,
    stdin: "null",
    stdout: target.stdoutToNull ? "null" : "piped",
    stderr: "piped",
  }).spawn();
  const tail: string[] = [];
  if (!target.stdoutToNull) void drain(child.stdout, tail);
  void drain(child.stderr, tail);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    stopping ??= (async () => {
      if (!exited) {
        trySignal(child, "SIGTERM");
        const timer = setTimeout(() => trySignal(child, "SIGKILL"), 2000);
        await status;
        clearTimeout(timer);
      }
      if (dataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    })();
  const ready = { ms: 0, cpuMs: 0 };
  const server: ServerProcess = {
    name: target.name,
    port,
    get pids() {
      return processTree(child.pid);
    },
    spawnedAt,
    ready,
    sample: () => sumSamples(processTree(child.pid).flatMap(sampleIfAlive)),
    resetPeak: () => processTree(child.pid).every(resetPeak),
    output: () => tail.join("\n"),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  try {
    await waitForPort(port, () => exited);
    ready.ms = performance.now() - spawnedAt;
    ready.cpuMs = server.sample().cpuMs;
  } catch (error) {
    await stop();
    throw new Error(
      `Server "${target.name}" did not start: ${(error as Error).message}\n${tail.join("\n")}`,
    );
  }
  return server;
}

// `env` without every variable the server's configuration reads (found by reading a
// configuration from an environment that notes what is asked of it), so that a setting in the
// bench's own environment cannot reach the server.
function withoutSettings(env: Record<string, string>): Record<string, string> {
  const read = new Set<string>();
  loadConfig(
    [],
    new Proxy({}, {
      get(_, key) {
        if (typeof key === "string") read.add(key);
        return undefined;
      },
    }),
  );
  const kept = { ...env };
  for (const name of read) delete kept[name];
  return kept;
}

/**
 * Throws unless `env` configures the server with its defaults but for the port, the data
 * directory and the keys of `except`.
 */
export function assertDefaults(env: Record<string, string>, except: string[]): void {
  const config = loadConfig([], env) as unknown as Record<string, unknown>;
  // What `deno task start` makes of an empty environment (some defaults follow others: the hosts
  // a loopback server answers to), not the bare `DEFAULT_CONFIG`.
  const defaults = loadConfig([], {}) as unknown as Record<string, unknown>;
  const differ = Object.keys(defaults).filter((key) =>
    key !== "port" && key !== "dataDir" && !except.includes(key) &&
    JSON.stringify(config[key]) !== JSON.stringify(defaults[key])
  );
  if (differ.length > 0) {
    throw new Error(`Not the default configuration: ${differ.join(", ")} differ`);
  }
}

function sampleIfAlive(pid: number): ProcSample[] {
  try {
    return [sampleProcess(pid)];
  } catch {
    return []; // exited between listing and reading
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitForPort(port: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("it exited");
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`port ${port} not open after ${START_TIMEOUT_MS} ms`);
}

async function drain(stream: ReadableStream<Uint8Array>, tail: string[]): Promise<void> {
  const lines = stream.pipeThrough(new TextDecoderStream());
  for await (const text of lines) {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
    }
  }
}

function trySignal(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch { /* already gone */ }
}
