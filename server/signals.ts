/**
 * Stopping on a signal, as `deno task start` does: SIGTERM (a deploy, `docker stop`, systemd)
 * drains, closing the sockets with 1012 spread over the drain window, so clients move to the
 * other processes a few at a time; SIGINT (Ctrl-C) stops at once with 1001. Either way the app
 * closes and its backends are written and closed (the in-process streams go to Deno KV), so a
 * restart keeps the rooms' history and epochs. A second signal, or the deadline, exits at once.
 */
import { log } from "../telemetry/log.ts";

/** What a signal stops: a served app (`serveApp`) or a pool of Workers (`startWorkers`). */
export interface Stoppable {
  /** Closes the sockets spread over `windowMs`, then stops (SIGTERM). */
  drain(windowMs: number): Promise<void>;
  /** Stops at once (SIGINT). */
  shutdown(): Promise<void>;
}

/** How {@linkcode stopOnSignals} stops. */
export interface StopOnSignalsOptions {
  /** How long SIGTERM's drain spreads the sockets' closes over (`DRAIN_WINDOW_MS`). */
  drainWindowMs: number;
  /** What is drained, for the log line, e.g. "120 connections". */
  describe?: () => string;
  /** Ends the process once stopped (default `Deno.exit`). */
  exit?: (code: number) => void;
}

/**
 * Stops `server` gracefully on SIGTERM and SIGINT, then exits. Returns a function that removes
 * the listeners again.
 */
export function stopOnSignals(server: Stoppable, options: StopOnSignalsOptions): () => void {
  const exit = options.exit ?? ((code: number) => Deno.exit(code));
  let stopping = false;
  const stop = async (signal: "SIGINT" | "SIGTERM") => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      return exit(0);
    }
    stopping = true;
    const windowMs = signal === "SIGTERM" ? options.drainWindowMs : 0;
    // The drain's own budget: the window, then 1 s for close frames and 1 s for the writes.
    const limitMs = signal === "SIGTERM" ? windowMs + 2000 : 5000;
    const deadline = setTimeout(() => {
      log.warn(`${signal}: not done within ${limitMs / 1000} s; exiting now`);
      exit(0);
    }, limitMs);
    if (signal === "SIGTERM") {
      const what = options.describe?.() ?? "the connections";
      log.info(`SIGTERM: draining ${what} over ${windowMs / 1000} s`);
      await server.drain(windowMs);
    } else {
      log.info(`${signal}: shutting down`);
      await server.shutdown();
    }
    clearTimeout(deadline);
    log.info(`${signal}: stopped`);
    exit(0);
  };
  const onInterrupt = () => void stop("SIGINT");
  const onTerminate = () => void stop("SIGTERM");
  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", onTerminate);
  return () => {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", onTerminate);
  };
}
