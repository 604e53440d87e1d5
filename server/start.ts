/**
 * Starts a server from a configuration: opens the store and the layer, builds the app, and
 * serves it. Used by `main.ts`, the tests (port 0) and the benchmark.
 */
import type { Config } from "./config.ts";
import { type App, createApp } from "./app.ts";
import { openLayer, openPresence } from "../layers/mod.ts";
import { openStore } from "../storage/mod.ts";
import { log } from "./log.ts";

/** A running server. */
export interface RunningServer {
  readonly app: App;
  /** `http://host:port` it listens on. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, closes sockets with 1001, flushes and releases everything. */
  shutdown(): Promise<void>;
}

/** Starts serving `config` and resolves once it listens. */
export async function startServer(
  config: Config,
  options: {
    reusePort?: boolean;
    /** Names this Worker in an `x-served-by` header on every answer (`--workers N`). */
    servedBy?: string;
  } = {},
): Promise<RunningServer> {
  log.setLevel(config.logLevel);
  const store = await openStore(config);
  let layer;
  let presence;
  try {
    layer = await openLayer(config);
    presence = await openPresence(config, layer);
  } catch (error) {
    await layer?.close();
    store.close();
    throw error;
  }
  const app = createApp({ config, layer, store, presence });
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    reusePort: options.reusePort,
    onListen: (addr) => resolve(addr as Deno.NetAddr),
  }, options.servedBy ? namedHandler(app.handle, options.servedBy) : app.handle);
  const addr = await listening;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  let stopping: Promise<void> | null = null;
  return {
    app,
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    shutdown: () =>
      stopping ??= (async () => {
        const stopped = server.shutdown();
        await app.closeSockets();
        await stopped;
        await layer.close();
        store.close();
      })(),
  };
}

// Shows which Worker answered, so an operator (and the tests) can see reusePort at work.
function namedHandler(handle: App["handle"], name: string): App["handle"] {
  return async (request, info) => {
    const response = await handle(request, info);
    response.headers.set("x-served-by", name);
    return response;
  };
}
