/**
 * `Deno.serve`, listening again when its accept loop fails.
 *
 * Deno stops accepting for good when `accept` fails, e.g. with EMFILE once every file
 * descriptor is in use (thousands of connections that never finish their headers will do it),
 * and the server's `finished` promise rejects. The connections already open go on being served.
 * Unhandled, that rejection ended the process, and every open socket with it; here it is
 * logged and the same address is listened on again, after a pause that doubles while it keeps
 * failing (0.1 s to 5 s), so the server accepts again as soon as descriptors are free.
 */
import { log } from "../telemetry/log.ts";

const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 5000;
/** Listening this long without a failure starts the pauses from the shortest again. */
const STABLE_MS = 30_000;

/** What {@linkcode listen} needs: `Deno.serve`'s options, but for `onListen`. */
export interface ListenOptions {
  hostname: string;
  port: number;
  reusePort?: boolean;
  /** Aborting cuts the connections still open (Deno's non-graceful shutdown). */
  signal?: AbortSignal;
}

/** A listener that comes back after its accept loop failed. */
export interface Listener {
  /** The address it listens on (the port picked, when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Stops accepting for good, and resolves once the connections have finished. */
  shutdown(): Promise<void>;
}

/** Listens on `options`' address with `handler`; resolves once it accepts connections. */
export async function listen(
  options: ListenOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Promise<Listener> {
  let stopped = false;
  let pauseMs = FIRST_PAUSE_MS;
  let retry: ReturnType<typeof setTimeout> | undefined;
  // Every server started, for shutdown: an old one still serves the connections it accepted.
  const servers = new Set<Deno.HttpServer<Deno.NetAddr>>();

  // The port bound first: a server that asked for 0 listens again where it was.
  let boundPort = options.port;
  const serve = (port: number, listening?: (addr: Deno.NetAddr) => void): void => {
    const startedAt = performance.now();
    const server = Deno.serve({
      hostname: options.hostname,
      port,
      reusePort: options.reusePort,
      signal: options.signal,
      onListen: (addr) => listening?.(addr as Deno.NetAddr),
    }, handler);
    servers.add(server);
    server.finished.then(() => servers.delete(server), (error: Error) => {
      servers.delete(server);
      if (stopped) return;
      if (performance.now() - startedAt >= STABLE_MS) pauseMs = FIRST_PAUSE_MS;
      log.error(
        `The listener on port ${boundPort} stopped accepting (${error.message}); listening ` +
          `again in ${pauseMs / 1000} s. The connections already open go on.`,
      );
      again(boundPort);
    });
  };

  const again = (port: number): void => {
    const wait = pauseMs;
    pauseMs = Math.min(pauseMs * 2, MAX_PAUSE_MS);
    retry = setTimeout(() => {
      if (stopped) return;
      try {
        serve(port, () => log.info(`Listening again on port ${port}`));
      } catch (error) {
        log.error(`Could not listen again (${(error as Error).message}); trying later`);
        again(port);
      }
    }, wait);
  };

  const { promise, resolve } = Promise.withResolvers<Deno.NetAddr>();
  serve(options.port, resolve); // a first failure (the address taken) throws to the caller
  const addr = await promise;
  boundPort = addr.port;
  return {
    addr,
    async shutdown() {
      stopped = true;
      clearTimeout(retry);
      await Promise.all([...servers].map((server) => server.shutdown()));
    },
  };
}
