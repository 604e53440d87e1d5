/**
 * `deno task start --workers N`: N Workers in one process, each serving the same port with
 * `reusePort` (Linux spreads incoming connections across them by a hash of the addresses).
 *
 * The Workers share nothing in memory, so they are joined by a layer that crosses Workers
 * (see `workerConfig`). Without Redis, the parent is the Workers' stream sequencer: it gives
 * every offset of the retained streams and writes them to Deno KV (`StreamSequencer`), and
 * each Worker reaches it through a port of its own. A Worker that fails stops the whole
 * process, so the supervisor that restarts crashed processes sees it. Each Worker runs the
 * app's own module, which calls {@linkcode runWorker} with the function that starts one
 * server.
 */
import { warnAnyHostAnswered } from "./_any_host_warning.ts";
import type { Config } from "./config.ts";
import type { RunningServer } from "./start.ts";
import { workerConfig } from "./backends.ts";
import { openSequencer } from "./_worker_sequencer.ts";
import { log } from "../telemetry/log.ts";
import { assertAddressFree, holdPoolPort, urlOf } from "./_listen_address.ts";
import { WorkerHeartbeat } from "./_worker_heartbeat.ts";

/** Messages from the parent to a Worker; a shutdown with `drainMs` drains over that window. */
export type ToWorker =
  /** `streams`: the port of the parent's stream sequencer, with the `broadcast` layer. */
  | { type: "start"; config: Config; streams?: MessagePort }
  | { type: "shutdown"; drainMs?: number }
  /** The heartbeat: a Worker answers `pong`. */
  | { type: "ping" };
/** Messages from a Worker to the parent. */
export type FromWorker =
  | { type: "listening"; url: string }
  | { type: "failed"; error: string }
  | { type: "stopped" }
  | { type: "pong" };

/** Running Workers. */
export interface WorkerPool {
  /** `http://host:port` they listen on. */
  readonly url: string;
  /** The port they share. */
  readonly port: number;
  /** `http://host:port/metrics` of `METRICS_ADDRESS` (one port for all), or `null`. */
  readonly metricsUrl: string | null;
  /** How many Workers serve. */
  readonly size: number;
  /** Asks every Worker to shut down gracefully and waits (at most `timeoutMs`). */
  shutdown(timeoutMs?: number): Promise<void>;
  /**
   * Asks every Worker to drain over `windowMs` at the same time (each closes its own sockets
   * with 1012, spread over the window) and waits, at most `windowMs` plus 1.5 s.
   */
  drain(windowMs: number): Promise<void>;
}

/**
 * How long a Worker may leave the parent's heartbeat unanswered before it counts as hung, in
 * asks of the heartbeat (one a second), not in time: see `_worker_heartbeat.ts`.
 */
export const WORKER_HANG_MS = 30_000;
/** How long a Worker may take to say it listens before the start fails: 30 s. */
export const WORKER_START_MS = 30_000;
/** How long the others have to drain when a Worker failed, before the process exits. */
const FAILED_STOP_MS = 3000;

/** How {@linkcode startWorkers} watches its Workers. */
export interface WorkerPoolOptions {
  /** A Worker that leaves this long of asks unanswered is hung (default {@linkcode WORKER_HANG_MS}). */
  hangMs?: number;
  /**
   * A Worker that has not said it listens this long after the start fails the start (default
   * {@linkcode WORKER_START_MS}).
   */
  startTimeoutMs?: number;
  /**
   * Stops the start (a SIGTERM before the pool served): the Workers that serve already are shut
   * down, the streams written, and the start rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * Starts `config.workers` Workers of `workerModule` on one port; resolves once all listen.
 * A Worker that throws, or hangs (see {@linkcode WORKER_HANG_MS}), stops the pool: the others
 * drain and the streams are written, then the process exits with code 1.
 */
export async function startWorkers(
  config: Config,
  workerModule: URL,
  options: WorkerPoolOptions = {},
): Promise<WorkerPool> {
  if (config.port !== 0) return await startWorkersOn(config, config.port, workerModule, options);
  // PORT=0: a port free when chosen may be taken by another program before the Workers bind it
  // (a busy test machine): another one is chosen then, rather than failing the start.
  for (let attempt = 1;; attempt++) {
    try {
      return await startWorkersOn(config, freePort(config.host), workerModule, options);
    } catch (error) {
      const taken = String((error as Error)?.message).includes("is in use by another program");
      if (!taken || attempt === FREE_PORT_ATTEMPTS) throw error;
    }
  }
}

/** How many ports PORT=0 tries, each taken by another program before the Workers bound it. */
const FREE_PORT_ATTEMPTS = 3;

async function startWorkersOn(
  config: Config,
  port: number,
  workerModule: URL,
  options: WorkerPoolOptions,
): Promise<WorkerPool> {
  const where = `HOST and PORT: ${config.host}:${port}`;
  // Before the Workers bind with `reusePort`, which would not notice another server there; then
  // held until the pool stops, so that another pool started at the same moment, which passed the
  // check too, is refused here.
  assertAddressFree(config.host, port, where);
  warnAnyHostAnswered(config); // once for the pool: each Worker serves with `reusePort`
  const portHold = await holdPoolPort(config.host, port, where);
  try {
    return await startPool(config, port, workerModule, options, portHold);
  } catch (error) {
    portHold.close();
    throw error;
  }
}

async function startPool(
  config: Config,
  port: number,
  workerModule: URL,
  options: WorkerPoolOptions,
  portHold: { close(): void },
): Promise<WorkerPool> {
  // One port for every Worker, as for PORT: with port 0 each would bind a random one of its own.
  const wanted = config.metricsAddress;
  const metrics = wanted?.port === 0
    ? { hostname: wanted.hostname, port: freePort(wanted.hostname) }
    : wanted;
  config = { ...config, metricsAddress: metrics };
  if (metrics !== null) {
    assertAddressFree(
      metrics.hostname,
      metrics.port,
      `METRICS_ADDRESS: ${metrics.hostname}:${metrics.port}`,
    );
  }
  const shared = workerConfig(config, port);
  const sequencer = shared.layer === "broadcast" ? await openSequencer(config) : null;
  const workers: Worker[] = [];
  // Workers that failed (threw, or stopped answering): not waited for when the pool stops.
  const failed = new Set<Worker>();
  let stopping = false;
  const heartbeat = new WorkerHeartbeat(
    options.hangMs ?? WORKER_HANG_MS,
    (worker, i, silentMs) =>
      fail(worker, workerName(i), `no answer for ${Math.round(silentMs / 1000)} s (blocked)`),
  );
  let stopped: Promise<void> | null = null;
  const stop = (message: ToWorker, timeoutMs: number): Promise<void> =>
    stopped ??= (async () => {
      stopping = true;
      heartbeat.stop();
      let problem: unknown;
      await stopEach(workers, failed, message, timeoutMs).catch((error) => problem = error);
      // The Workers publish no more (they were ended): what the sequencer holds is written now.
      await sequencer?.close().catch((error) => problem ??= error);
      portHold.close();
      if (problem !== undefined) {
        if (failed.size === 0) throw problem;
        log.error(`After a Worker failed: ${(problem as Error).message}`);
      }
      // After a Worker failed, the process ends here, with code 1 so that the supervisor
      // restarts it, whoever else waits for this stop (a SIGTERM that came meanwhile).
      if (failed.size > 0) Deno.exit(1);
    })();
  // A Worker that fails takes the process down, so the supervisor that restarts crashed
  // processes sees it; but the others drain first (1012, as on a deploy) and the sequencer's
  // streams are written, so their clients recover everything, as after a restart.
  const fail = (worker: Worker, name: string, reason: string): void => {
    // While the pool stops, the stop names it among those that did not stop (see `stop`).
    if (stopping) return log.error(`Worker ${name} failed while stopping: ${reason}`);
    log.error(`Worker ${name} failed: ${reason}; stopping the others, then exiting`);
    failed.add(worker);
    worker.terminate();
    void stop({ type: "shutdown", drainMs: 0 }, FAILED_STOP_MS);
  };
  const started: Promise<string>[] = [];
  for (let n = 1; n <= config.workers; n++) {
    const name = workerName(n - 1);
    const worker = new Worker(workerModule, { type: "module", name });
    workers.push(worker);
    worker.onerror = (event) => {
      event.preventDefault();
      fail(worker, name, event.message);
    };
    heartbeat.listen(worker);
    started.push(awaitReply(worker, "listening").then((reply) => (reply as { url: string }).url));
    const streams = sequencer?.connect();
    worker.postMessage(
      { type: "start", config: shared, streams } satisfies ToWorker,
      streams === undefined ? [] : [streams],
    );
  }
  let urls: string[];
  const startMs = options.startTimeoutMs ?? WORKER_START_MS;
  const aborted = new Promise<never>((_, reject) => {
    const signal = options.signal;
    if (signal?.aborted) reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  try {
    urls = await Promise.race([
      allWithin(started, startMs, (late) =>
        new Error(
          `${late.map(workerName).join(", ")} did not say ${
            late.length === 1 ? "it listens" : "they listen"
          } within ${startMs / 1000} s of the start (blocked, or a start that never ends)`,
        )),
      aborted,
    ]);
  } catch (error) {
    // Those that serve already close their sockets as on a stop, and the streams are written;
    // one still starting is ended.
    await stop({ type: "shutdown" }, 4500).catch(() => {});
    throw error;
  }
  heartbeat.start(workers, (worker) => failed.has(worker));
  return {
    url: urls[0],
    port,
    metricsUrl: metrics === null ? null : `${urlOf(metrics)}/metrics`,
    size: workers.length,
    shutdown: (timeoutMs = 4500) => stop({ type: "shutdown" }, timeoutMs),
    drain: (windowMs) => stop({ type: "shutdown", drainMs: windowMs }, windowMs + 1500),
  };
}

/**
 * Asks every Worker but those that `failed` to stop with `message`, waits for them at most
 * `timeoutMs`, then ends them all; rejects naming those that did not stop in time (they were
 * ended with their sockets open: not a clean stop).
 */
async function stopEach(
  workers: readonly Worker[],
  failed: ReadonlySet<Worker>,
  message: ToWorker,
  timeoutMs: number,
): Promise<void> {
  const stoppedOnes = new Set<Worker>();
  const replies = workers.map((worker) => {
    if (failed.has(worker)) return Promise.resolve();
    const reply = awaitReply(worker, "stopped").then(() => void stoppedOnes.add(worker));
    worker.postMessage(message);
    return reply;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise((resolve) => timer = setTimeout(resolve, timeoutMs));
  await Promise.race([Promise.allSettled(replies), deadline]);
  clearTimeout(timer);
  for (const worker of workers) worker.terminate();
  // One that failed before the stop was named then.
  const late = workers.flatMap((worker, i) =>
    stoppedOnes.has(worker) || failed.has(worker) ? [] : [workerName(i)]
  );
  if (late.length > 0) {
    throw new Error(
      `${late.join(", ")} did not stop within ${timeoutMs / 1000} s; ended with ` +
        `${late.length === 1 ? "its" : "their"} sockets open`,
    );
  }
}

// `promises`' values, or the error `late` makes of the indexes of those still pending after
// `ms` (a rejection first rejects at once).
async function allWithin<T>(
  promises: Promise<T>[],
  ms: number,
  late: (pending: number[]) => Error,
): Promise<T[]> {
  const settled = new Set<number>();
  promises.forEach((promise, i) => void promise.then(() => settled.add(i), () => {}));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(late(promises.flatMap((_, i) => settled.has(i) ? [] : [i]))),
      ms,
    );
  });
  try {
    return await Promise.race([Promise.all(promises), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

// The name of the pool's `index`th Worker (from 0): `worker-1` first.
function workerName(index: number): string {
  return `worker-${index + 1}`;
}

function awaitReply(worker: Worker, type: FromWorker["type"]): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const listener = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === "failed") {
        worker.removeEventListener("message", listener);
        reject(new Error(message.error));
      } else if (message.type === type) {
        worker.removeEventListener("message", listener);
        resolve(message);
      }
    };
    worker.addEventListener("message", listener);
  });
}

/** A port that is free now (the Workers bind it together right after). */
function freePort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** How one Worker starts its server. */
export type StartServer = (
  config: Config,
  options: { reusePort: boolean; servedBy: string; streamsPort?: MessagePort },
) => Promise<RunningServer>;

/** Makes this Worker serve with `start` when the parent says so, until it says stop. */
export function runWorker(start: StartServer): void {
  // This module is also loaded outside Workers, so it cannot use the Worker's global types.
  const scope = self as unknown as WorkerScope;
  log.setSource(scope.name); // its drain and failure lines say which Worker wrote them
  let server: RunningServer | null = null;
  const tell = (message: FromWorker): void => scope.postMessage(message);
  scope.onmessage = async (event) => {
    const message = event.data;
    if (message.type === "start") {
      try {
        server = await start(message.config, {
          reusePort: true,
          servedBy: scope.name,
          streamsPort: message.streams,
        });
        tell({ type: "listening", url: server.url });
      } catch (error) {
        tell({ type: "failed", error: (error as Error).message });
      }
    } else if (message.type === "ping") {
      tell({ type: "pong" });
    } else if (message.type === "shutdown") {
      if (message.drainMs === undefined) await server?.shutdown();
      else await server?.drain(message.drainMs);
      tell({ type: "stopped" });
    }
  };
}

interface WorkerScope {
  readonly name: string;
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}
