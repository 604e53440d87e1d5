/**
 * The site started: opens the backends once, builds the site over them, runs the background
 * workers this process hosts, and serves. `main.ts` calls it for one process, and each Worker
 * of `--workers N` calls it from `_worker.ts`.
 */
import {
  type Config,
  createServices,
  log,
  openBackends,
  runChannelWorkers,
  type RunningServer,
  serveApp,
  type UpgradeWebSocket,
} from "../mod.ts";
import { createSite } from "./mod.ts";
import { RESERVED_USERNAMES } from "../consumers/reserved_names.ts";
import { siteWorkers } from "./workers.ts";

/** How {@linkcode startSite} serves besides the configuration. */
export interface SiteServeOptions {
  reusePort?: boolean;
  /** Names this Worker in an `x-served-by` header (`--workers N`). */
  servedBy?: string;
  /** The parent's stream sequencer (a Worker of `--workers N`). */
  streamsPort?: MessagePort;
  /** Replaces `Deno.upgradeWebSocket` (tests). */
  upgrade?: UpgradeWebSocket;
}

/** Opens the backends, builds the site over them and serves it; resolves once it listens. */
export async function startSite(
  config: Config,
  options: SiteServeOptions = {},
): Promise<RunningServer> {
  log.setLevel(config.logLevel);
  const backends = await openBackends(config, { streamsPort: options.streamsPort });
  const services = createServices(config, backends, { reservedUsernames: RESERVED_USERNAMES });
  // The background workers IN_PROCESS_WORKERS names run here (`deno task worker` elsewhere).
  const router = siteWorkers(config);
  const names = config.inProcessWorkers === "all" ? router.names : config.inProcessWorkers;
  // Announced once the site serves: a start that fails (its port taken) has no workers.
  const workers = await runChannelWorkers(router, services, { names, announce: false }).catch(
    async (error) => {
      await backends.close();
      throw error;
    },
  );
  const app = createSite(services, { upgrade: options.upgrade });
  const close = async () => {
    await workers.close();
    await backends.close();
  };
  try {
    const running = await serveApp(app, {
      hostname: config.host,
      port: config.port,
      reusePort: options.reusePort,
      servedBy: options.servedBy,
      onClosed: close,
    });
    for (const name of workers.names) log.info(`Worker listening on channel "${name}"`);
    return running;
  } catch (error) {
    // Not served (its port is taken): what was opened for it is let go, DATA_DIR's lock too.
    await app.close();
    await close();
    throw error;
  }
}
