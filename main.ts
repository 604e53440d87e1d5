/**
 * `deno task start`: reads the configuration, starts the site (`routes/start.ts`) in this
 * process or in `--workers N` Workers, and stops gracefully on a signal.
 */
import {
  asksForHelp,
  type Config,
  loadConfig,
  log,
  redisLingerIgnoredBecause,
  secretsOnCommandLine,
  settingsHelp,
  settingTypos,
  startWorkers,
  stopOnSignals,
  workerConfig,
} from "./mod.ts";
import { startSite } from "./routes/start.ts";
import { checkInProcessWorkers } from "./routes/workers.ts";

if (asksForHelp(Deno.args)) {
  console.log(`Usage: deno task start [--workers N] [--<setting> <value>]...\n${settingsHelp()}`);
  Deno.exit(0);
}
let config: Config;
try {
  config = loadConfig(Deno.args, Deno.env.toObject());
  checkInProcessWorkers(config);
} catch (error) {
  console.error(`Configuration error: ${(error as Error).message}`);
  Deno.exit(2);
}
log.setLevel(config.logLevel);
for (const typo of settingTypos(Deno.args, Deno.env.toObject())) {
  log.warn(`Unknown setting ${typo}: it is ignored`);
}
for (const warning of secretsOnCommandLine(Deno.args)) log.warn(warning);
const workers = config.workers > 1;
// A signal while the Workers start stops the start: those that serve already close their
// sockets, the streams are written, and the process exits (Deno's default would end it at once).
const starting = new AbortController();
const stopStart = (signal: Deno.Signal) => () =>
  starting.abort(new Error(`${signal} before the server served: stopped`));
const startSignals = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((name) =>
  [name, stopStart(name)] as const
);
if (workers) { for (const [name, stop] of startSignals) Deno.addSignalListener(name, stop); }
const server =
  await (workers
    ? startWorkers(config, new URL("./routes/_worker.ts", import.meta.url), {
      signal: starting.signal,
    })
    : startSite(config))
    .catch((error) => {
      console.error(`Could not start: ${(error as Error).message}`);
      Deno.exit(1);
    });
// SIGTERM drains (the sockets close with 1012 spread over DRAIN_WINDOW_MS); SIGINT and SIGHUP (the
// terminal closed) stop at once.
stopOnSignals(server, {
  drainWindowMs: config.drainWindowMs,
  watched: Deno.env.get("CHANNELS_WATCH") === "1", // `deno task dev`
  describe: () =>
    "app" in server
      ? `${server.app.live.size} connections`
      : `the connections of ${server.size} Workers`,
});
// Only now: with no listener in between, a signal would end the process at once.
if (workers) { for (const [name, stop] of startSignals) Deno.removeSignalListener(name, stop); }
// Said once a signal would stop it gracefully: a supervisor that waits for this line may send
// SIGTERM at once.
const served = workers ? workerConfig(config, 0) : config;
const layer = served.layer;
// The linger sets the latency of every chat message under load: said where it applies.
const lingers = redisLingerIgnoredBecause(served) === null;
const linger = config.redisLingerMs > 0 ? `${config.redisLingerMs} ms` : "off";
// Where users, sessions and history are kept: DATA_DIR only on the Deno KV layers off Deploy.
const data = layer === "redis" || layer === "channels_redis"
  ? "Redis"
  : Deno.env.get("DENO_DEPLOYMENT_ID")
  ? "the deployment's Deno KV"
  : config.dataDir;
log.info(
  `Serving the chat at ${server.url}/chat/ (layer: ${layer}, data: ${data}` +
    `${workers ? `, workers: ${config.workers}` : ""}` +
    `${lingers ? `, Redis linger: ${linger}` : ""})`,
);
