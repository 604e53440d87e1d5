/**
 * A process of background workers (Channels' `runworker`), for any app's workers: the
 * configuration, the layer and the store opened as the server opens them, the named channels
 * listened on, and a bounded stop on SIGINT, SIGTERM or SIGHUP. `deno task worker` is the site's
 * (`cli/worker.ts`); an app's own is a file of two lines:
 *
 * @example
 * ```ts
 * import { channelNameRouter, type ChannelWorker, runWorkerProcess } from "@channels/deno";
 *
 * declare const thumbnails: ChannelWorker;
 * // deno.json: "worker": "deno run -A --unstable-kv worker.ts"; then, with LAYER=redis as the
 * // servers have it: deno task worker thumbnails
 * if (import.meta.main) {
 *   Deno.exit(await runWorkerProcess(Deno.args, () => channelNameRouter({ thumbnails })));
 * }
 * ```
 */
import { type ChannelNameRouter, runChannelWorkers, unknownChannels } from "./channel_workers.ts";
import { type Config, loadConfig, secretsOnCommandLine } from "./config.ts";
import { createServices } from "./services.ts";
import { layerCrossesProcesses, openBackends } from "./backends.ts";
import { stopOnSignals } from "./signals.ts";
import { log } from "../telemetry/log.ts";
import { asksForHelp, settingsHelp } from "./command_help.ts";

/**
 * How long a stop waits for the events the workers took before giving up on them (logged).
 * On Redis that is the one event under way: a worker takes the next only once idle, so the
 * events it has not started stay in Redis for another worker. SIGTERM's deadline is this plus
 * 2 s for closing the layer and the store, as SIGINT's 5 s is.
 */
export const WORKER_PROCESS_STOP_MS = 3000;

// An app's own worker is a `worker` task of its deno.json too, as the README shows.
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
 * Runs the workers `routerOf` gives for the configuration on the channels `args` name (then the
 * settings as flags, `--layer redis`) until SIGINT, SIGTERM or SIGHUP; resolves with the exit
 * code: 0 once stopped, 1 when it could not start (Redis unreachable), 2 for a mistake in the
 * command line or the settings (a layer that does not cross processes: the worker would hear
 * nothing).
 */
export async function runWorkerProcess(
  args: string[],
  routerOf: (config: Config) => ChannelNameRouter,
): Promise<number> {
  if (asksForHelp(args)) {
    // The usage even when a setting is wrong (which the start would say), without the channels.
    let channels = "";
    try {
      channels = ` (channels: ${routerOf(loadConfig([], Deno.env.toObject())).names.join(", ")})`;
    } catch {
      // the settings' own mistake is told when it starts
    }
    console.log(`${WORKER_USAGE}${channels}\n${settingsHelp()}`);
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
  // A mistyped channel is the command line's mistake: said before anything is opened.
  const unknown = unknownChannels(router, names);
  if (unknown !== null) {
    console.error(unknown);
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
