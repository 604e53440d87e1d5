/**
 * `deno task start`: reads the configuration, starts the site (`routes/start.ts`) in this
 * process or in `--workers N` Workers, and stops gracefully on a signal.
 */
import {
  type Config,
  loadConfig,
  log,
  redisLingerIgnoredBecause,
  startWorkers,
  workerConfig,
} from "./mod.ts";
import { startSite } from "./routes/start.ts";

let config: Config;
try {
  config = loadConfig(Deno.args, Deno.env.toObject());
} catch (error) {
  console.error(`Configuration error: ${(error as Error).message}`);
  Deno.exit(2);
}
log.setLevel(config.logLevel);
const workers = config.workers > 1;
const server =
  await (workers
    ? startWorkers(config, new URL("./routes/_worker.ts", import.meta.url))
    : startSite(config))
    .catch((error) => {
      console.error(`Could not start: ${(error as Error).message}`);
      Deno.exit(1);
    });
const served = workers ? workerConfig(config, 0) : config;
const layer = served.layer;
// The linger sets the latency of every chat message under load: said where it applies.
const lingers = redisLingerIgnoredBecause(served) === null;
const linger = config.redisLingerMs > 0 ? `${config.redisLingerMs} ms` : "off";
log.info(
  `Serving the chat at ${server.url}/chat/ (layer: ${layer}, data: ${config.dataDir}` +
    `${workers ? `, workers: ${config.workers}` : ""}` +
    `${lingers ? `, Redis linger: ${linger}` : ""})`,
);
// SIGTERM (a deploy, `docker stop`, systemd) drains: the sockets close with 1012 spread over
// DRAIN_WINDOW_MS, so clients move to the other processes a few at a time and keep their
// presence grace. SIGINT (Ctrl-C) stops at once with 1001. A second signal, or the deadline,
// exits whatever is left.
let stopping = false;
const stop = async (signal: "SIGINT" | "SIGTERM") => {
  if (stopping) {
    log.warn(`${signal} again: exiting now`);
    Deno.exit(0);
  }
  stopping = true;
  const windowMs = signal === "SIGTERM" ? config.drainWindowMs : 0;
  // The drain's own budget: the window, then 1 s for close frames and 1 s for the writes.
  const limitMs = signal === "SIGTERM" ? windowMs + 2000 : 5000;
  const deadline = setTimeout(() => {
    log.warn(`${signal}: not done within ${limitMs / 1000} s; exiting now`);
    Deno.exit(0);
  }, limitMs);
  if (signal === "SIGTERM") {
    const what = "app" in server
      ? `${server.app.live.size} connections`
      : `the connections of ${server.size} Workers`;
    log.info(`SIGTERM: draining ${what} over ${windowMs / 1000} s`);
    await server.drain(windowMs);
  } else {
    log.info(`${signal}: shutting down`);
    await server.shutdown();
  }
  clearTimeout(deadline);
  log.info(`${signal}: stopped`);
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
