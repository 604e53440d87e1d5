/**
 * `deno task worker <channel>...`: runs the site's background workers (Channels' `runworker`)
 * in a process of their own, with the server's configuration and layer, until SIGINT or
 * SIGTERM. E.g. `LAYER=redis deno task worker dice` answers the chat's `/roll 2d6` for every
 * server on that Redis. Flags after the names are configuration flags (`--layer redis`).
 *
 * Only a layer that crosses processes (Redis) reaches a worker process; with the in-process
 * layers the server runs its workers itself (`IN_PROCESS_WORKERS`, default `all` there).
 */
import {
  type Config,
  createServices,
  layerCrossesProcesses,
  loadConfig,
  log,
  openBackends,
  runChannelWorkers,
  secretsOnCommandLine,
} from "../mod.ts";
import { siteWorkers } from "../routes/workers.ts";
import { asksForHelp, settingsHelp } from "./_help.ts";

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

async function main(args: string[]): Promise<number> {
  if (asksForHelp(args)) {
    const channels = siteWorkers(loadConfig([], Deno.env.toObject())).names.join(", ");
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
  const router = siteWorkers(config);
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
  const workers = await runChannelWorkers(router, createServices(config, backends), { names })
    .catch(async (error) => {
      console.error(`Could not start: ${(error as Error).message}`);
      await backends.close();
      return null;
    });
  if (workers === null) return 1;
  log.info(`Running workers for ${names.map((n) => `"${n}"`).join(", ")} (layer: ${config.layer})`);
  const signal = await new Promise<string>((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve("SIGINT"));
    Deno.addSignalListener("SIGTERM", () => resolve("SIGTERM"));
  });
  log.info(`${signal}: stopping the workers`);
  await workers.close();
  await backends.close();
  log.info(`${signal}: stopped`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
