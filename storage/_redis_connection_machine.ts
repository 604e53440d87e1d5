/**
 * The reconnection state machine every Redis connection runs, with what it needs from the
 * connection (a probe) and from time (a clock, faked in tests).
 *
 * Why "ready" is not enough: node-redis sends its handshake (`CLIENT SETINFO`) on a fresh socket
 * and ignores the handshake's failures. A socket that reached a Redis still going down therefore
 * dies during the handshake, the failures are swallowed, and node-redis declares the dead socket
 * ready. Its socket listeners have fired already, so it never reports an error or reconnects
 * again: a zombie. The machine catches it (the PING fails while the client says it is ready)
 * and restarts the client.
 */
import { log } from "../telemetry/log.ts";

/** Where a connection is in its life; see {@linkcode RedisConnectionMachine}. */
export type RedisConnectionState = "connecting" | "ready" | "lost" | "restoring" | "closed";

/** The longest wait between two reconnect attempts (the machine's PINGs, the client's own). */
export const MAX_BACKOFF_MS = 5000;
const PROBE_TIMEOUT_MS = 2000;
/** The longest wait between two PINGs while the client believes its socket works. */
const LIVE_SOCKET_MAX_BACKOFF_MS = 1000;

/** What the machine needs from a connection: a command to try, and a way to start over. */
export interface RedisProbe {
  /** Sends one command (PING) on the connection; resolves once Redis answered. */
  ping(): Promise<unknown>;
  /** Whether the client believes its socket is ready (a zombie believes so too). */
  readonly isReady: boolean;
  /** Drops the socket and connects again; used when a "ready" connection cannot PING. */
  restart?(): void;
}

/** Timers for the machine; tests pass a fake clock. */
export interface MachineClock {
  /** Schedules `callback` after `ms`. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels what `setTimeout` returned. */
  clearTimeout(handle: unknown): void;
  /** The time in ms. */
  now(): number;
}

/** Options of {@linkcode RedisConnectionMachine}. */
export interface RedisConnectionMachineOptions {
  /** Names the connection in log lines. */
  name: string;
  /** The target as shown in log lines (no password). */
  target: string;
  /** Called each time the connection is restored. */
  onRestored?: () => void;
  /** Timers (default: the real ones). */
  clock?: MachineClock;
  /** How long a PING may take before it counts as failed (default 2 s). */
  probeTimeoutMs?: number;
}

const realClock: MachineClock = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
  // Durations, not dates: a clock stepped back or forth (NTP) must not make an outage negative.
  now: () => performance.now(),
};

/**
 * The reconnection state machine every Redis connection runs.
 *
 * ```
 * connecting ──connected──▶ ready ──failed──▶ lost ──readied / backoff──▶ restoring
 *                             ▲                 ▲                              │
 *                             └──PING answered──┼──────────────────────────────┘
 *                                               └──────PING failed─────────────┘
 * ```
 *
 * - "lost" is logged once, on leaving `ready`; "restored" once, on reaching it again. A client
 *   that flaps while Redis is going down stays lost without new lines.
 * - Only a PING that Redis answered moves a connection to `ready`; a client's own "ready" event
 *   just starts a PING. While lost, a PING is also tried on a capped backoff, so a connection
 *   whose client stopped reporting (see the module doc) is still found again.
 * - A PING that fails while the client says it is ready means its socket is dead: the
 *   connection is restarted.
 */
export class RedisConnectionMachine {
  #state: RedisConnectionState = "connecting";
  #probe: RedisProbe;
  #options: RedisConnectionMachineOptions;
  #clock: MachineClock;
  #attempt = 0;
  #timer: unknown = null;
  /** Increases with every PING, so the answer of an outdated one is ignored. */
  #epoch = 0;
  #lostSince: number | null = null;
  /** Outages it came back from, and their milliseconds (the metrics read them). */
  restoredCount = 0;
  downMsRestored = 0;

  /** Watches the connection that `probe` reaches. */
  constructor(probe: RedisProbe, options: RedisConnectionMachineOptions) {
    this.#probe = probe;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
  }

  /** Where the connection is. */
  get state(): RedisConnectionState {
    return this.#state;
  }

  /** The connection's name in log lines and metrics. */
  get name(): string {
    return this.#options.name;
  }

  /** True while `ready`. */
  get up(): boolean {
    return this.#state === "ready";
  }

  /** When the current outage began (ms), or `null` while not lost. */
  get lostSince(): number | null {
    return this.#lostSince;
  }

  /** The first connect succeeded (a PING was answered). */
  connected(): void {
    if (this.#state === "connecting") this.#state = "ready";
  }

  /** The client reported an error: a ready connection is lost until a PING succeeds. */
  failed(error: unknown): void {
    if (this.#state === "ready") {
      this.#state = "lost";
      this.#lostSince = this.#clock.now();
      log.warn(
        `Redis connection (${this.#options.name}) to ${this.#options.target} lost; ` +
          `reconnecting: ${describeError(error)}`,
      );
      this.#schedule();
    } else if (this.#state === "restoring") {
      this.#epoch++; // the PING in flight went out on the socket that just failed
      this.#state = "lost";
      this.#schedule();
    }
  }

  /**
   * A command got no answer within its bound while the connection was `ready`: lost, as on an
   * error. In any other state it changes nothing: the PING in flight, or the next one on the
   * backoff, decides (calls timing out one after another must not cancel it and push it back).
   */
  unanswered(error: unknown): void {
    if (this.#state === "ready") this.failed(error);
  }

  /** The client says it is ready again: try a PING now. */
  readied(): void {
    if (this.#state === "lost") this.#tryPing();
  }

  /** Stops every timer; the machine ignores the client from now on. */
  close(): void {
    this.#state = "closed";
    this.#epoch++;
    this.#cancel();
  }

  #schedule(): void {
    this.#cancel();
    // A socket the client believes works (a Redis paused, or busy with a script) sends no
    // "ready" when Redis answers again: only a PING finds it, so they are not 5 s apart.
    const cap = this.#probe.isReady ? LIVE_SOCKET_MAX_BACKOFF_MS : MAX_BACKOFF_MS;
    const backoff = Math.min(100 * 2 ** Math.min(this.#attempt, 10), cap);
    this.#attempt++;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#state === "lost") this.#tryPing();
    }, backoff);
  }

  #cancel(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #tryPing(): void {
    this.#cancel();
    this.#state = "restoring";
    const epoch = ++this.#epoch;
    let timer: unknown = null;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(
        () => reject(new Error("no answer in time")),
        this.#options.probeTimeoutMs ?? PROBE_TIMEOUT_MS,
      );
    });
    let pinging: Promise<unknown>;
    try {
      pinging = Promise.resolve(this.#probe.ping());
    } catch (error) {
      pinging = Promise.reject(error);
    }
    Promise.race([pinging, timedOut]).then(
      () => this.#answered(epoch),
      (error) => this.#unanswered(epoch, error),
    ).finally(() => this.#clock.clearTimeout(timer));
    pinging.catch(() => {}); // a late failure after the timeout is expected
  }

  #answered(epoch: number): void {
    if (epoch !== this.#epoch || this.#state !== "restoring") return;
    this.#state = "ready";
    this.#attempt = 0;
    // Never negative, whatever clock it was given: the metric is a counter.
    const downMs = Math.max(0, this.#clock.now() - (this.#lostSince ?? this.#clock.now()));
    this.#lostSince = null;
    this.restoredCount++;
    this.downMsRestored += downMs;
    log.info(
      `Redis connection (${this.#options.name}) to ${this.#options.target} restored ` +
        `after ${Math.round(downMs)} ms`,
    );
    this.#options.onRestored?.();
  }

  #unanswered(epoch: number, error: unknown): void {
    if (epoch !== this.#epoch || this.#state !== "restoring") return;
    this.#state = "lost";
    // The client thinks its socket works, yet Redis did not answer: it will not notice alone.
    // An error reply (BUSY from a long script, LOADING) is an answer: the socket works, and a
    // new one would get the same reply, at once, in a loop of reconnections.
    if (this.#probe.isReady && !isErrorReply(error)) this.#probe.restart?.();
    this.#schedule();
  }
}

// Redis's own error answer (node-redis's `ErrorReply` and its subclasses), by class name, as
// `unavailable.ts` reads it: node-redis leaves `name` at "Error".
function isErrorReply(error: unknown): boolean {
  for (
    let proto = Object.getPrototypeOf(error ?? {});
    proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    if (proto.constructor?.name === "ErrorReply") return true;
  }
  return false;
}

/** An error's message for log lines, even for errors that have none of their own. */
export function describeError(error: unknown): string {
  const message = (error as Error)?.message;
  if (message) return message;
  // node's AggregateError (IPv4 and IPv6 both refused) has no message of its own
  const inner = (error as { errors?: Error[] })?.errors?.[0]?.message;
  return inner ?? String(error);
}
