/**
 * `deno task start`: the composition root. It reads the configuration, opens the backends
 * once, builds the site over them, serves it, and stops gracefully on a signal. It is the one
 * module that knows both the framework and the apps.
 */
import {
  type Config,
  createServices,
  loadConfig,
  log,
  openBackends,
  type RunningServer,
  serveApp,
  startWorkers,
  type UpgradeWebSocket,
  workerConfig,
} from "./mod.ts";
import { createSite } from "./routes/mod.ts";

/** How {@linkcode startSite} serves besides the configuration. */
export interface SiteServeOptions {
  reusePort?: boolean;
  /** Names this Worker in an `x-served-by` header (`--workers N`). */
  servedBy?: string;
  /** Replaces `Deno.upgradeWebSocket` (tests). */
  upgrade?: UpgradeWebSocket;
}

/** Opens the backends, builds the site over them and serves it; resolves once it listens. */
export async function startSite(
  config: Config,
  options: SiteServeOptions = {},
): Promise<RunningServer> {
  log.setLevel(config.logLevel);
  const backends = await openBackends(config);
  const app = createSite(createServices(config, backends), { upgrade: options.upgrade });
  return await serveApp(app, {
    hostname: config.host,
    port: config.port,
    reusePort: options.reusePort,
    servedBy: options.servedBy,
    onClosed: backends.close,
  });
}

if (import.meta.main) {
  let config: Config;
  try {
    config = loadConfig(Deno.args, Deno.env.toObject());
  } catch (error) {
    console.error(`Configuration error: ${(error as Error).message}`);
    Deno.exit(2);
  }
  log.setLevel(config.logLevel);
  const workers = config.workers > 1;
  const server = await (workers
    ? startWorkers(config, new URL("./routes/_worker.ts", import.meta.url))
    : startSite(config))
    .catch((error) => {
      console.error(`Could not start: ${(error as Error).message}`);
      Deno.exit(1);
    });
  const layer = workers ? workerConfig(config, 0).layer : config.layer;
  log.info(
    `Serving the chat at ${server.url}/chat/ (layer: ${layer}, data: ${config.dataDir}` +
      `${workers ? `, workers: ${config.workers}` : ""})`,
  );
  const stop = async (signal: string) => {
    log.info(`${signal}: shutting down`);
    // Exit within 5 s even if a client does not answer its close frame.
    const deadline = setTimeout(() =>
      Deno.exit(0), 5000);
    await server.shutdown();
    clearTimeout(deadline);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}
