/**
 * Serves an app with `Deno.serve` and stops it gracefully: stop accepting, close the app (its
 * sockets, then what it owns), then whatever the caller opened for it. A drain does the same,
 * closing the sockets spread over a window (see `App.drain`).
 */
import { listenError, urlOf } from "./_listen_address.ts";
import type { App } from "./app.ts";
import { log } from "../telemetry/log.ts";
import { warnAnyHostAnswered } from "./_any_host_warning.ts";
import { serveMetrics } from "./metrics_route.ts";
import { settlesWithin } from "./drain.ts";
import { listen, type Listener } from "./_listener.ts";

/**
 * How long the listener's graceful stop may take once the app has closed its sockets, before
 * the connections still open are cut. A peer that neither answers a close frame nor drops
 * its TCP connection (a browser whose page went away mid-close, say) would otherwise hold
 * `Deno.serve`'s graceful shutdown, and the process, forever.
 */
export const LISTENER_STOP_MS = 2000;

/**
 * How long a stop at once (SIGINT) waits for its clients to answer the app's close frames
 * before Deno's shutdown ends the rest.
 */
export const CLOSE_ANSWER_MS = 1000;

/** A running server. */
export interface RunningServer {
  /** The app being served. */
  readonly app: App;
  /** `http://host:port` it listens on. */
  readonly url: string;
  /** The port it listens on (the one picked, when 0 was asked for). */
  readonly port: number;
  /** `http://host:port/metrics` when `METRICS_ADDRESS` serves the metrics here, else `null`. */
  readonly metricsUrl: string | null;
  /** Stops accepting, closes the app, then runs `onClosed`; safe to call twice. */
  shutdown(): Promise<void>;
  /**
   * Stops accepting, drains the app over `windowMs` (sockets closed with 1012, presence handed
   * over), then runs `onClosed`. Shares one run with `shutdown`: whichever comes first.
   */
  drain(windowMs: number): Promise<void>;
}

/** Where and how to serve. */
export interface ServeOptions {
  /** The address to listen on, e.g. `127.0.0.1`, or `0.0.0.0` for every interface. */
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** Several Workers share the port (`--workers N`). */
  reusePort?: boolean;
  /** Names this Worker in an `x-served-by` header on every answer (`--workers N`). */
  servedBy?: string;
  /** Runs after the app closed, e.g. to close the backends it ran on. */
  onClosed?: () => Promise<void>;
}

/** Serves `app` and resolves once it listens. */
export async function serveApp(app: App, options: ServeOptions): Promise<RunningServer> {
  if (options.servedBy) app.services.metrics.nameWorker(options.servedBy);
  const { workers } = app.services.config;
  // `WORKERS` is a setting every app reads, but only a pool of Workers acts on it: an app that
  // serves this way alone would run one process and never say so.
  if (workers > 1 && options.reusePort !== true) {
    log.warn(
      `WORKERS is ${workers}, but this app serves one process: Workers are started by ` +
        "startWorkers(config, workerModule), each serving through runWorker(start) " +
        '(see "Your own app on several Workers" in the README)',
    );
  }
  // A pool's parent says it once for its Workers (`startWorkers`).
  if (options.reusePort !== true) warnAnyHostAnswered(app.services.config);
  // First: when its address is taken, nothing has started yet.
  const metrics = await metricsServer(app, options.reusePort === true);
  const handle = options.servedBy ? namedHandler(app.handle, options.servedBy) : app.handle;
  // Aborting cuts every connection still open (Deno's non-graceful shutdown).
  const cut = new AbortController();
  const server = await listen({
    hostname: options.hostname,
    port: options.port,
    reusePort: options.reusePort,
    signal: cut.signal,
  }, handle).catch(async (error) => {
    await metrics?.shutdown();
    throw listenError(error, `HOST and PORT: ${options.hostname}:${options.port}`);
  });
  const addr = server.addr;
  // As Daphne's "Listening on TCP address …": an app of one's own says nothing else at start.
  log.info(`Listening at ${urlOf(addr)}${options.servedBy ? ` (${options.servedBy})` : ""}`);
  let stopping: Promise<void> | null = null;
  return {
    app,
    url: urlOf(addr),
    port: addr.port,
    metricsUrl: metrics === null ? null : `${urlOf(metrics.addr)}/metrics`,
    shutdown: () =>
      stopping ??= (async () => {
        // The app closes its sockets first (1001), so each one's log line, close count and
        // `disconnect` code say the server closed it: Deno's own shutdown closes them all too,
        // with the same code, but then each reads as closed by its client (1005). What did not
        // answer by `CLOSE_ANSWER_MS` is Deno's to end.
        const closing = app.close();
        await settlesWithin(closing, CLOSE_ANSWER_MS);
        const stopped = server.shutdown();
        await closing;
        await stopListening(stopped, cut, listenerStopMs(app));
        await metrics?.shutdown();
        await options.onClosed?.();
      })(),
    // `server.shutdown()` would close every WebSocket at once (Deno sends 1001), so until the
    // drain is over new requests are refused by the app, and the listener closes afterwards.
    drain: (windowMs) =>
      stopping ??= (async () => {
        const started = performance.now();
        // The app refuses new requests itself from now on, each with a log line.
        log.info("Drain: new connections are refused with 503");
        await app.drain(windowMs);
        await stopListening(server.shutdown(), cut, listenerStopMs(app));
        await metrics?.shutdown();
        // Said once written: a write that fails rejects instead (and the stop is not clean).
        await options.onClosed?.();
        const took = ((performance.now() - started) / 1000).toFixed(1);
        log.info(`Drain: pending writes flushed; done in ${took} s`);
      })(),
  };
}

/**
 * How long the listener's stop is waited for, before and after its connections are cut, once
 * Deno holds a socket it will never close (see `listenerStopMs`).
 */
const HELD_LISTENER_STOP_MS = 100;

// A descriptor Deno holds for a client that left during its upgrade never closes, so the
// listener's graceful stop cannot finish: waited for, it would hold every stop (a `--workers`
// drain past its budget, exit code 1) for the rest of the process's life. It is cut at once.
function listenerStopMs(app: App): number {
  const held = app.live.heldByDeno;
  if (held === 0) return LISTENER_STOP_MS;
  log.info(
    `Shutdown: Deno holds ${held} socket(s) of clients that left during their upgrade; ` +
      "the listener is cut at once",
  );
  return HELD_LISTENER_STOP_MS;
}

/**
 * Waits for the listener's graceful stop (`stopped`) at most `ms`, then aborts `cut` (which cuts
 * the connections still open) and waits at most `ms` again. Resolves whether or not it stopped.
 */
export async function stopListening(
  stopped: Promise<void>,
  cut: AbortController,
  ms: number = LISTENER_STOP_MS,
): Promise<void> {
  if (await settlesWithin(stopped, ms)) return;
  log.warn(
    `Shutdown: connections still open ${ms / 1000} s after the app closed ` +
      "(a client that never finished its close); cutting them",
  );
  cutConnections(cut);
  if (!await settlesWithin(stopped, ms)) {
    log.warn("Shutdown: the listener did not stop after its connections were cut; going on");
  }
}

// A listener that finished closing just as the wait ran out has no resource left, and
// `Deno.serve`'s abort listener then throws BadResource: reported as an uncaught error, which
// would end the process. There is nothing left to cut, so that one error is let go.
function cutConnections(cut: AbortController): void {
  const alreadyGone = (event: ErrorEvent) => {
    if (!(event.error instanceof Deno.errors.BadResource)) return;
    event.preventDefault();
    log.debug("Shutdown: the listener had closed already; nothing to cut");
  };
  globalThis.addEventListener("error", alreadyGone);
  try {
    cut.abort();
  } finally {
    globalThis.removeEventListener("error", alreadyGone);
  }
}

// `METRICS_ADDRESS`: `/metrics` alone on its own address. Of several Workers (`reusePort`),
// the first to bind serves its own figures; the others say so once (the pool checked before
// they started that no other program holds it).
async function metricsServer(
  app: App,
  workers: boolean,
): Promise<Listener | null> {
  const address = app.services.config.metricsAddress;
  if (address === null) return null;
  try {
    const server = await serveMetrics(app.services.metrics, address);
    log.info(`Metrics at ${urlOf(server.addr)}/metrics`);
    return server;
  } catch (error) {
    if (!workers || !(error instanceof Deno.errors.AddrInUse)) {
      throw listenError(error, `METRICS_ADDRESS: ${address.hostname}:${address.port}`);
    }
    log.info("METRICS_ADDRESS is served by another Worker");
    return null;
  }
}

// Shows which Worker answered, so an operator (and the tests) can see reusePort at work.
function namedHandler(handle: App["handle"], name: string): App["handle"] {
  return async (request, info) => {
    const response = await handle(request, info);
    response.headers.set("x-served-by", name);
    return response;
  };
}
