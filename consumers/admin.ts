/**
 * The admin page's live figures, one row per process, over the layer.
 *
 * Every process runs an {@linkcode AdminStats}: a channel in the group `admin.processes`. An
 * admin socket (staff only) joins `admin.stats` and sends `admin.subscribe` to
 * `admin.processes` at once and every 2 s. A process that hears it publishes its row (its
 * snapshot and the rates since its last one) to `admin.stats` every second, until 5 s pass
 * without a heartbeat: while no admin page is open anywhere, no process publishes anything.
 * A row is small and bounded: totals, per-route counts, and the 20 largest groups.
 */
import {
  type Closable,
  type Consumer,
  type LayerEvent,
  log,
  type ProcessSnapshot,
  ProtocolError,
  type Services,
} from "../mod.ts";

/** The group every admin socket joins; each process's row is sent to it. */
export const ADMIN_STATS_GROUP = "admin.stats";
/** The group every process's {@linkcode AdminStats} is in; heartbeats are sent to it. */
export const ADMIN_PROCESSES_GROUP = "admin.processes";
/** The heartbeat an admin socket sends while it is open. */
export const ADMIN_SUBSCRIBE = "admin.subscribe";
/** One process's row. */
export const ADMIN_ROW = "admin.row";
/** Why a signed-in user who is not staff is refused the admin page and its socket. */
export const NOT_STAFF = "the admin page is for staff users only";

/** One process's row: its snapshot with rates per second since its previous row. */
export interface AdminRow extends ProcessSnapshot {
  /** Frames received from clients per second. */
  inPerSecond: number;
  /** Frames sent to clients per second. */
  outPerSecond: number;
  /** Events handed to receivers per second. */
  deliveriesPerSecond: number;
  /** Drops per second. */
  dropsPerSecond: number;
}

/** Timers of the admin figures (tests shorten them). */
export interface AdminTimers {
  /** How often a process publishes its row while subscribed (default 1 s). */
  intervalMs?: number;
  /** How long a heartbeat keeps a process publishing (default 5 s). */
  leaseMs?: number;
  /** How often an admin socket sends its heartbeat (default 2 s). */
  heartbeatMs?: number;
}

/** This process's publisher of admin rows; close it with the app. */
export class AdminStats implements Closable {
  readonly #services: Services;
  readonly #intervalMs: number;
  readonly #leaseMs: number;
  /** How often admin sockets send their heartbeat. */
  readonly heartbeatMs: number;
  #channel: string;
  #ready: Promise<void>;
  #leaseUntil = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #previous: ProcessSnapshot | null = null;
  #closed = false;

  /** Joins `admin.processes` on the layer of `services`. */
  constructor(services: Services, timers: AdminTimers = {}) {
    this.#services = services;
    this.#intervalMs = timers.intervalMs ?? 1000;
    this.#leaseMs = timers.leaseMs ?? 5000;
    this.heartbeatMs = timers.heartbeatMs ?? 2000;
    this.#channel = services.layer.newChannel((event) => this.#heard(event));
    // `Promise.try`: a layer may throw rather than reject.
    this.#ready = Promise.try(() => services.layer.groupAdd(ADMIN_PROCESSES_GROUP, this.#channel))
      .catch((error) => log.warn("Admin figures: could not join the processes' group", error));
  }

  /** Resolves once this process hears heartbeats. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Stops publishing and leaves the group. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop();
    await this.#ready;
    await Promise.try(() => this.#services.layer.closeChannel(this.#channel)).catch(() => {});
  }

  #heard(event: LayerEvent): boolean {
    if (event.type !== ADMIN_SUBSCRIBE || this.#closed) return true;
    this.#leaseUntil = performance.now() + this.#leaseMs;
    if (this.#timer === undefined) {
      this.#previous = null; // rates start again after a pause
      this.#publish();
      this.#timer = setInterval(() => this.#publish(), this.#intervalMs);
    }
    return true;
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #publish(): void {
    if (performance.now() > this.#leaseUntil) return this.#stop();
    const row = this.#row(this.#services.metrics.snapshot());
    const event = { type: ADMIN_ROW, ...row };
    // From a timer, where a layer's throw would end the process: taken as a rejection.
    Promise.try(() => this.#services.layer.groupSend(ADMIN_STATS_GROUP, event)).catch(
      (error) => log.debug(`Admin figures not sent: ${error}`),
    );
  }

  #row(now: ProcessSnapshot): AdminRow {
    const before = this.#previous;
    this.#previous = now;
    const seconds = before === null ? 0 : (now.at - before.at) / 1000;
    const rate = (pick: (snapshot: ProcessSnapshot) => number): number =>
      before === null || seconds <= 0 ? 0 : Math.max(0, pick(now) - pick(before)) / seconds;
    return {
      ...now,
      inPerSecond: rate((s) => s.framesReceived),
      outPerSecond: rate((s) => s.framesSent),
      deliveriesPerSecond: rate((s) => s.deliveries),
      dropsPerSecond: rate((s) => s.dropped),
    };
  }
}

/**
 * `WS /ws/admin/`: staff only (the route requires a login; `connect` refuses non-staff with
 * 403). Sends each process's `admin.row` as it comes; the client sends nothing.
 */
export function adminConsumer(services: Services, stats: AdminStats): Consumer {
  return (conn) => {
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    const subscribe = () =>
      conn.groupSend(ADMIN_PROCESSES_GROUP, { type: ADMIN_SUBSCRIBE }).catch((error) =>
        log.debug(`Admin heartbeat not sent: ${error}`)
      );
    return {
      async connect() {
        const { username, source } = conn.scope.user;
        // Only this server's accounts are staff: another server's user of the same name is not.
        const ours = username !== null && source === undefined;
        const user = ours ? await services.users.find(username) : null;
        // Refused with the reason in the REJECT line, as the page's 403 has it.
        if (user?.staff !== true) throw new ProtocolError(NOT_STAFF);
        await conn.groupAdd(ADMIN_STATS_GROUP);
        await subscribe();
        heartbeat = setInterval(subscribe, stats.heartbeatMs);
      },
      receive() {
        // Nothing to say to the server: the figures come by themselves.
      },
      disconnect() {
        clearInterval(heartbeat);
      },
      events: {
        [ADMIN_ROW]: (event) => conn.sendJson(event),
      },
    };
  };
}
