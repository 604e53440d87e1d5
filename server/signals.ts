/**
 * Stopping on a signal, as `deno task start` does: SIGTERM (a deploy, `docker stop`, systemd)
 * drains, closing the sockets with 1012 spread over the drain window, so clients move to the
 * other processes a few at a time; SIGINT (Ctrl-C) stops at once with 1001, and so does SIGHUP
 * (the terminal it runs in closed: an SSH session dropped), which would otherwise end the process
 * on the spot, its last history unwritten and its rooms' epochs lost. Either way the app
 * closes and its backends are written and closed (the in-process streams go to Deno KV), so a
 * restart keeps the rooms' history and epochs. A second signal, or the deadline, exits at once,
 * with code 1: what was not written yet may be lost.
 *
 * One stop often arrives as two signals a few milliseconds apart: `deno task` passes the signal
 * on to the server, which a terminal's Ctrl-C or systemd's stop has signalled too (they signal the
 * whole process group). So a signal within 1,000 ms (`ECHO_MS`) of the first is the same stop.
 */
import { log } from "../telemetry/log.ts";

/** How long after the first signal another one is taken for the same stop, not a second one. */
export const ECHO_MS = 1000;

/** The exit code of a stop cut short (a second signal, or the deadline). */
export const CUT_SHORT_EXIT_CODE = 1;

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
  /**
   * How long after the first signal another is taken for the same stop (default
   * 1,000 ms, `ECHO_MS`); only a signal after that cuts the stop short.
   */
  echoMs?: number;
  /**
   * The process runs under `deno run --watch` (`deno task dev` says so with `CHANNELS_WATCH=1`):
   * there `Deno.exit` ends the program but not the watcher, which starts the server again on a
   * file change. The watcher itself asks for that stop with SIGTERM (its "graceful termination",
   * about a second), which no listener can tell from an operator's: a SIGTERM closes the sockets
   * at once (no drain window), writes the streams and ends the program only, and the watcher
   * goes on (a second SIGTERM then ends it). Once stopped on SIGINT (Ctrl-C), the signal itself
   * ends the process, watcher and all, with no listener left to take it (exit status 128 + the
   * signal's number, not the usual code).
   */
  watched?: boolean;
}

/**
 * Stops `server` gracefully on SIGTERM, SIGINT and SIGHUP, then exits. Returns a function that
 * removes the listeners again.
 */
export function stopOnSignals(server: Stoppable, options: StopOnSignalsOptions): () => void {
  const exit = options.exit ?? ((code: number) => Deno.exit(code));
  const echoMs = options.echoMs ?? ECHO_MS;
  let firstAt: number | null = null;
  const end = (signal: StopSignal, code: number) => {
    if (!options.watched || signal === "SIGTERM") return exit(code);
    remove();
    Deno.kill(Deno.pid, signal);
  };
  const stop = async (signal: StopSignal) => {
    if (firstAt !== null) {
      if (performance.now() - firstAt < echoMs) return; // the same stop, passed on twice
      log.warn(`${signal} again: exiting now`);
      return end(signal, CUT_SHORT_EXIT_CODE);
    }
    firstAt = performance.now();
    // Under the watcher, a SIGTERM is its restart, which waits for the program only about a
    // second: the sockets close at once, so that the streams are written before it goes on.
    const windowMs = signal === "SIGTERM" && !options.watched ? options.drainWindowMs : 0;
    // The drain's own budget: the window, then 1 s for close frames and 1 s for the writes.
    const limitMs = signal === "SIGTERM" ? windowMs + 2000 : 5000;
    const deadline = setTimeout(() => {
      log.warn(`${signal}: not done within ${limitMs / 1000} s; exiting now`);
      end(signal, CUT_SHORT_EXIT_CODE);
    }, limitMs);
    try {
      if (signal === "SIGTERM") {
        const what = options.describe?.() ?? "the connections";
        log.info(`SIGTERM: draining ${what} over ${windowMs / 1000} s`);
        await server.drain(windowMs);
      } else {
        log.info(`${signal}: shutting down`);
        await server.shutdown();
      }
    } catch (error) {
      // A part that did not stop (a Worker that hung): the stop is not a clean one.
      clearTimeout(deadline);
      log.warn(`${signal}: ${(error as Error).message}; exiting now`);
      return end(signal, CUT_SHORT_EXIT_CODE);
    }
    clearTimeout(deadline);
    log.info(`${signal}: stopped`);
    end(signal, 0);
  };
  const listeners = STOP_SIGNALS.map((signal) => [signal, () => void stop(signal)] as const);
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  const remove = () => {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  };
  return remove;
}

/** The signals that stop the server: SIGTERM drains, the others stop at once. */
const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
type StopSignal = typeof STOP_SIGNALS[number];
