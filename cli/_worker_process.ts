/**
 * The worker process of `deno task worker <channel>...` (see `cli/worker.ts`), for any route
 * table: the configuration, the layer and the store opened as the server opens them, the named
 * channels listened on, and a bounded stop on SIGINT or SIGTERM.
 */
import {
  type ChannelNameRouter,
  type Config,
  createServices,
  layerCrossesProcesses,
  loadConfig,
  log,
  openBackends,
  runChannelWorkers,
  secretsOnCommandLine,
  stopOnSignals,
} from "../mod.ts";
import { asksForHelp, settingsHelp } from "./_help.ts";

/**
 * How long a stop waits for the events the workers took before giving up on them (logged).
 * On Redis that is the one event under way: a worker takes the next only once idle, so the
 * events it has not started stay in Redis for another worker. SIGTERM's deadline is this plus
 * 2 s for closing the layer and the store, as SIGINT's 5 s is.
 */
export const WORKER_PROCESS_STOP_MS = 3000;

const WORKER_USAGE = "Usage: deno task worker <channel>... [--<setting> <value>]...";

/** What the command line asked for: channel names, and flags for the configuration. */
export function parseWorkerArgs(args: string[]): { names: string[]; configArgs: string[] } {
  const names: string[] = [];
  const configArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) {
      names.push(arg);
      continue;
    }
    configArgs.push(arg);
    if (!arg.includes("=") && i + 1 < args.length && !args[i + 1].startsWith("--")) {
      configArgs.push(args[++i]);
    }
  }
  return { names, configArgs };
}

/**
 * Runs `deno task worker <channel>...` with the workers `routerOf` gives for the configuration
 * (the site's, for `cli/worker.ts`) until SIGINT or SIGTERM; resolves with the exit code.
 */
export async function runWorkerProcess(
  args: string[],
  routerOf: (config: Config) => ChannelNameRouter,
): Promise<number> {
  if (asksForHelp(args)) {
    const channels = routerOf(loadConfig([], Deno.env.toObject())).names.join(", ");
    console.log(`${WORKER_USAGE} (channels: ${channels})\n${settingsHelp()}`);
    return 0;
  }
  const { names, configArgs } = parseWorkerArgs(args);
  let config: Config;
  try {
    config = loadConfig(configArgs, Deno.env.toObject());
  } catch (error) {
    console.error(`Configuration error: ${(error as Error).message}`);
    return 2;
  }
  for (const warning of secretsOnCommandLine(configArgs)) log.warn(warning);
  const router = routerOf(config);
  if (names.length === 0) {
    console.error(`${WORKER_USAGE} (channels: ${router.names.join(", ")})`);
    return 2;
  }
  if (!layerCrossesProcesses(config)) {
    console.error(
      `LAYER=${config.layer} does not reach other processes, so a worker process would hear ` +
        `nothing: use LAYER=redis (or channels_redis) for the server and the workers, or let ` +
        `the server run its workers (IN_PROCESS_WORKERS=all, the default for ${config.layer})`,
    );
    return 2;
  }
  log.setLevel(config.logLevel);
  let backends;
  try {
    backends = await openBackends(config);
  } catch (error) {
    console.error(`Could not start: ${(error as Error).message}`);
    return 1;
  }
  const services = createServices(config, backends);
  const workers = await runChannelWorkers(router, services, {
    names,
    stopTimeoutMs: WORKER_PROCESS_STOP_MS,
  })
    .catch(async (error) => {
      console.error(`Could not start: ${(error as Error).message}`);
      await backends.close();
      return null;
    });
  if (workers === null) return 1;
  log.info(`Running workers for ${names.map((n) => `"${n}"`).join(", ")} (layer: ${config.layer})`);
  // As the server stops: a second signal (not the echo of the first) or the deadline exits at
  // once with code 1; a handler that never returns is given up on, so neither is needed for it.
  const stop = async () => {
    await workers.close();
    await backends.close();
  };
  return await new Promise<number>((exit) => {
    stopOnSignals({ drain: stop, shutdown: stop }, {
      drainWindowMs: WORKER_PROCESS_STOP_MS,
      describe: () => "the workers' events",
      exit,
    });
  });
}
