/**
 * `deno task start`: read the configuration, start the server, stop gracefully on a signal.
 */
import { loadConfig } from "./server/config.ts";
import { startServer } from "./server/start.ts";
import { startWorkers, workerConfig } from "./server/workers.ts";
import { log } from "./server/log.ts";

if (import.meta.main) {
  let config;
  try {
    config = loadConfig(Deno.args, Deno.env.toObject());
  } catch (error) {
    console.error(`Configuration error: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const server = await (config.workers > 1 ? startWorkers(config) : startServer(config))
    .catch((error) => {
      console.error(`Could not start: ${(error as Error).message}`);
      Deno.exit(1);
    });
  const layer = config.workers > 1 ? workerConfig(config, 0).layer : config.layer;
  log.info(
    `Serving the chat at ${server.url}/chat/ (layer: ${layer}, data: ${config.dataDir}` +
      `${config.workers > 1 ? `, workers: ${config.workers}` : ""})`,
  );
  const stop = async (signal: string) => {
    log.info(`${signal}: shutting down`);
    // Exit within 5 s even if a client does not answer its close frame.
    const deadline = setTimeout(() => Deno.exit(0), 5000);
    await server.shutdown();
    clearTimeout(deadline);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}
