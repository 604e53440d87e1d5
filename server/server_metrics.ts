/**
 * What the server counts, and how it is read: the Prometheus text for `GET /metrics`, and a
 * per-process snapshot for the admin page. One {@linkcode ServerMetrics} per set of services.
 *
 * The hot paths only add to plain numbers: each WebSocket route has a {@linkcode RouteMeter},
 * made when the route table is built, that its connections count frames, bytes, drops and
 * closes on. Everything a part already counts (the layer's deliveries and drops, the streams'
 * write times, the Redis connections' outages) is read from it at scrape time, not counted
 * twice.
 *
 * @example
 * ```ts
 * const metrics = services.metrics;
 * const text = metrics.render(); // the Prometheus text format
 * const row = metrics.snapshot(); // { connections, groups, framesReceived, ... }
 * ```
 */
import type { GroupLayer, GroupSize } from "../layers/layer.ts";
import type { GroupStreams } from "../layers/streams/contract.ts";
import { redisHealth } from "../storage/redis_health.ts";
import { CloseCode } from "./close_codes.ts";
import { utf8Length } from "../telemetry/utf8.ts";
import { type Metric, MetricsRegistry, type Sample } from "../telemetry/metrics.ts";

export { utf8Length };

/** Why a WebSocket handshake was refused, as the metrics label it. */
export type RefusalReason =
  | "bad_handshake"
  | "token"
  | "origin"
  | "login_required"
  | "cap_address"
  | "cap_user"
  | "consumer"
  | "consumer_error"
  | "unavailable";

/** Every {@linkcode RefusalReason}, in the order the handshake checks them. */
export const REFUSAL_REASONS: readonly RefusalReason[] = [
  "bad_handshake",
  "token",
  "origin",
  "login_required",
  "cap_address",
  "cap_user",
  "consumer",
  "consumer_error",
  "unavailable",
];

// Close codes counted by their number; any other is counted as "other" (a client may send
// any code from 3000 to 4999: labelling each would make a series per code).
const NAMED_CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005, 1006]);

/**
 * The counts of one WebSocket route, shared by its connections: plain numbers a connection
 * adds to where it already handles a frame. Read at scrape time.
 */
export class RouteMeter {
  /** The route's pattern, e.g. `/ws/chat/:room/` (the label; never the request's path). */
  readonly route: string;
  /** Sockets open now. */
  open = 0;
  /** Handshakes answered with 101. */
  accepted = 0;
  /** Frames received from clients, and their bytes. */
  framesIn = 0;
  /** Bytes of the frames received (UTF-8 for text). */
  bytesIn = 0;
  /** Frames sent to clients (a batched frame counts once). */
  framesOut = 0;
  /** Bytes of the frames sent (UTF-8 for text). */
  bytesOut = 0;
  /** Events refused because the socket had too much unsent. */
  congested = 0;
  /** Events refused because the connection's queue was full. */
  queueFull = 0;
  /** Frames dropped because more were sent before the socket opened than its queue holds. */
  beforeOpen = 0;
  /** Handshakes refused, by reason. */
  readonly refused: Record<RefusalReason, number> = Object.fromEntries(
    REFUSAL_REASONS.map((reason) => [reason, 0]),
  ) as Record<RefusalReason, number>;
  /** Closes by code (a number, or "other"). */
  readonly closes: Map<string, number> = new Map();
  // A group's event goes to every member as the same string: its length is measured once.
  #lastText = "";
  #lastBytes = 0;

  /** The meter of the route `route` (a pattern). */
  constructor(route: string) {
    this.route = route;
  }

  /** Counts a frame from a client. */
  received(data: string | ArrayBuffer | Blob): void {
    this.framesIn++;
    this.bytesIn += typeof data === "string"
      ? utf8Length(data)
      : data instanceof Blob
      ? data.size
      : data.byteLength;
  }

  /** Counts a frame to a client. */
  sent(data: string | Uint8Array): void {
    this.framesOut++;
    this.bytesOut += typeof data === "string" ? this.textBytes(data) : data.byteLength;
  }

  /** Counts a batched frame of `bytes` (its lines were measured by `textBytes` as added). */
  sentBatch(bytes: number): void {
    this.framesOut++;
    this.bytesOut += bytes;
  }

  /** UTF-8 bytes of `text`; the same string as last time is not measured again. */
  textBytes(text: string): number {
    if (text !== this.#lastText) {
      this.#lastText = text;
      this.#lastBytes = utf8Length(text);
    }
    return this.#lastBytes;
  }

  /** Counts an event a connection refused: its socket was congested, or its queue full. */
  dropped(congested: boolean): void {
    if (congested) this.congested++;
    else this.queueFull++;
  }

  /** Counts an open socket that closed with `code`. */
  closed(code: number): void {
    this.open--;
    const label = NAMED_CLOSE_CODES.has(code) ? String(code) : "other";
    this.closes.set(label, (this.closes.get(label) ?? 0) + 1);
  }
}

/** One process as the admin page shows it: totals since start; the page derives rates. */
export interface ProcessSnapshot {
  /** Names the process: `pid@host` and a short id unique to this run. */
  process: string;
  /** When the process started counting (ms since the epoch). */
  startedAt: number;
  /** When the snapshot was taken (ms since the epoch). */
  at: number;
  /** Open WebSockets. */
  connections: number;
  /** Open WebSockets per route pattern. */
  routes: { route: string; open: number }[];
  /** Groups with a member in this process. */
  groups: number;
  /** The groups with the most members here, largest first (at most 20). */
  largestGroups: GroupSize[];
  /** Frames received from clients. */
  framesReceived: number;
  /** Frames sent to clients. */
  framesSent: number;
  /** Events handed to receivers by the layer. */
  deliveries: number;
  /** Events dropped: refused by receivers over capacity, or sent before a socket opened. */
  dropped: number;
  /** Resident memory in bytes. */
  rssBytes: number;
  /** The event loop's latest lag, in ms. */
  eventLoopLagMs: number;
}

/** What the metrics read from at scrape time. */
export interface MetricsSources {
  /** The group layer (deliveries, drops, groups). */
  layer: GroupLayer;
  /** The streams (history write times), when they measure them. */
  streams?: GroupStreams;
}

const LAG_INTERVAL_MS = 500;
const LAG_WINDOW = 120; // samples: one minute
const LARGEST_GROUPS = 20;

/** The counts of one server's apps over one set of services. */
export class ServerMetrics {
  readonly #registry = new MetricsRegistry();
  readonly #routes = new Map<string, RouteMeter>();
  readonly #sources: MetricsSources;
  readonly #lag = new LagMonitor();
  readonly #id: string;
  readonly #startedAt = Date.now();

  /** Metrics over `sources`. */
  constructor(sources: MetricsSources) {
    this.#sources = sources;
    this.#id = `${Deno.pid}@${hostname()}/${crypto.randomUUID().slice(0, 4)}`;
    this.#define();
  }

  /** Names this process in snapshots. */
  get process(): string {
    return this.#id;
  }

  /** The meter of a WebSocket route (a pattern), made once per pattern. */
  route(pattern: string): RouteMeter {
    let meter = this.#routes.get(pattern);
    if (meter === undefined) {
      meter = new RouteMeter(pattern);
      this.#routes.set(pattern, meter);
    }
    return meter;
  }

  /** Starts measuring the event loop's lag (a timer every 500 ms); safe to call twice. */
  startLagMonitor(): void {
    this.#lag.start();
  }

  /** Stops the lag timer. */
  close(): void {
    this.#lag.stop();
  }

  /** Every metric in the Prometheus text format (version 0.0.4). */
  render(): string {
    this.#lag.start();
    return this.#registry.render();
  }

  /** This process's figures for the admin page. */
  snapshot(): ProcessSnapshot {
    this.#lag.start();
    const stats = this.#sources.layer.stats();
    const meters = [...this.#routes.values()];
    const sum = (pick: (meter: RouteMeter) => number) =>
      meters.reduce((total, meter) => total + pick(meter), 0);
    return {
      process: this.#id,
      startedAt: this.#startedAt,
      at: Date.now(),
      connections: sum((meter) => meter.open),
      routes: meters.map((meter) => ({ route: meter.route, open: meter.open })),
      groups: stats.groups,
      largestGroups: this.#sources.layer.groupSizes?.(LARGEST_GROUPS) ?? [],
      framesReceived: sum((meter) => meter.framesIn),
      framesSent: sum((meter) => meter.framesOut),
      deliveries: stats.delivered,
      dropped: stats.dropped + sum((meter) => meter.beforeOpen),
      rssBytes: Deno.memoryUsage().rss,
      eventLoopLagMs: this.#lag.last * 1000,
    };
  }

  #define(): void {
    const r = this.#registry;
    const route = ["route"];
    const perRoute = (metric: Metric<Sample>, pick: (meter: RouteMeter) => number) =>
      r.onCollect(() => {
        for (const meter of this.#routes.values()) metric.labels(meter.route).value = pick(meter);
      });
    perRoute(
      r.gauge("channels_connections_open", "WebSockets open now, by route pattern.", route),
      (meter) => meter.open,
    );
    perRoute(
      r.counter("channels_handshakes_accepted_total", "WebSocket handshakes accepted.", route),
      (meter) => meter.accepted,
    );
    const refused = r.counter(
      "channels_handshakes_refused_total",
      "WebSocket handshakes refused, by reason.",
      ["route", "reason"],
    );
    r.onCollect(() => {
      for (const meter of this.#routes.values()) {
        for (const reason of REFUSAL_REASONS) {
          refused.labels(meter.route, reason).value = meter.refused[reason];
        }
      }
    });
    perRoute(
      r.counter("channels_frames_received_total", "WebSocket frames from clients.", route),
      (meter) => meter.framesIn,
    );
    perRoute(
      r.counter("channels_received_bytes_total", "Bytes of frames from clients.", route),
      (meter) => meter.bytesIn,
    );
    perRoute(
      r.counter(
        "channels_frames_sent_total",
        "WebSocket frames to clients (a batched frame counts once).",
        route,
      ),
      (meter) => meter.framesOut,
    );
    perRoute(
      r.counter("channels_sent_bytes_total", "Bytes of frames to clients.", route),
      (meter) => meter.bytesOut,
    );
    const closes = r.counter(
      "channels_closes_total",
      "WebSockets closed, by close code (codes outside the known set as other).",
      ["route", "code"],
    );
    r.onCollect(() => {
      for (const meter of this.#routes.values()) {
        for (const [code, count] of meter.closes) closes.labels(meter.route, code).value = count;
      }
    });
    this.#defineDelivery(r);
    this.#defineProcess(r);
  }

  #defineDelivery(r: MetricsRegistry): void {
    const sends = r.counter(
      "channels_group_sends_total",
      "Group events delivered in this process (sent here or from another), once per event.",
    );
    const deliveries = r.counter(
      "channels_deliveries_total",
      "Events the layer handed to receivers in this process.",
    );
    const layerDropped = r.counter(
      "channels_layer_dropped_total",
      "Events refused by a receiver over capacity (includes socket_congested and queue_full).",
    );
    const socketDropped = r.counter(
      "channels_socket_dropped_total",
      "Events and frames a socket dropped, by reason.",
      ["reason"],
    );
    const groups = r.gauge("channels_groups", "Groups with a member in this process.");
    const channels = r.gauge("channels_layer_channels", "Open layer channels in this process.");
    r.onCollect(() => {
      const stats = this.#sources.layer.stats();
      if (stats.groupSends !== undefined) sends.labels().value = stats.groupSends;
      deliveries.labels().value = stats.delivered;
      layerDropped.labels().value = stats.dropped;
      groups.labels().value = stats.groups;
      channels.labels().value = stats.channels;
      const meters = [...this.#routes.values()];
      const sum = (pick: (meter: RouteMeter) => number) =>
        meters.reduce((total, meter) => total + pick(meter), 0);
      socketDropped.labels("socket_congested").value = sum((meter) => meter.congested);
      socketDropped.labels("queue_full").value = sum((meter) => meter.queueFull);
      socketDropped.labels("before_open").value = sum((meter) => meter.beforeOpen);
    });
    const writes = this.#sources.streams?.writeSeconds;
    if (writes !== undefined) {
      r.histogram(
        "channels_history_write_seconds",
        "Time to write history: a batch (in-process), a publish (Redis), a commit of publishes (KV).",
      ).attach(writes);
    }
    const up = r.gauge("channels_redis_up", "1 while the Redis connection is ready.", [
      "connection",
    ]);
    const reconnects = r.counter(
      "channels_redis_reconnects_total",
      "Redis connections restored after an outage.",
      ["connection"],
    );
    const down = r.counter(
      "channels_redis_down_seconds_total",
      "Seconds Redis connections spent lost, the current outage included.",
      ["connection"],
    );
    r.onCollect(() => {
      // Only the connections open now: a closed one's series goes.
      for (const metric of [up, reconnects, down]) metric.clear();
      for (const health of redisHealth()) {
        up.labels(health.connection).value = health.up;
        reconnects.labels(health.connection).value = health.reconnects;
        down.labels(health.connection).value = health.downSeconds;
      }
    });
  }

  #defineProcess(r: MetricsRegistry): void {
    const lag = r.gauge(
      "channels_event_loop_lag_seconds",
      "How late the last 500 ms timer fired.",
    );
    const lagMax = r.gauge(
      "channels_event_loop_lag_max_seconds",
      "The latest minute's largest event-loop lag.",
    );
    const rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    const cpu = r.counter("process_cpu_seconds_total", "User and system CPU time in seconds.");
    const started = r.gauge(
      "process_start_time_seconds",
      "When the process started counting, in seconds since the epoch.",
    );
    const readCpu = procStatReadable() ? cpuSeconds : null;
    r.onCollect(() => {
      lag.labels().value = this.#lag.last;
      lagMax.labels().value = this.#lag.max();
      rss.labels().value = Deno.memoryUsage().rss;
      started.labels().value = this.#startedAt / 1000;
      const seconds = readCpu?.();
      if (seconds != null) cpu.labels().value = seconds;
    });
  }
}

/** Measures how late a 500 ms timer fires: the event loop's lag. */
class LagMonitor {
  /** The last lag, in seconds. */
  last = 0;
  #recent: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #expected = 0;

  start(): void {
    if (this.#timer !== undefined) return;
    this.#expected = performance.now() + LAG_INTERVAL_MS;
    const timer = setInterval(() => {
      const now = performance.now();
      this.last = Math.max(0, now - this.#expected) / 1000;
      this.#expected = now + LAG_INTERVAL_MS;
      this.#recent.push(this.last);
      if (this.#recent.length > LAG_WINDOW) this.#recent.shift();
    }, LAG_INTERVAL_MS);
    // Never what keeps a process alive.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  max(): number {
    return this.#recent.reduce((a, b) => Math.max(a, b), this.last);
  }
}

// CPU time is read from /proc (Linux), when the process may read it without asking (a
// prompt); elsewhere the metric is left out.
function procStatReadable(): boolean {
  try {
    return Deno.build.os === "linux" &&
      Deno.permissions.querySync({ name: "read", path: "/proc/self/stat" }).state === "granted";
  } catch {
    return false;
  }
}

// `utime` and `stime`, in clock ticks of 1/100 s.
function cpuSeconds(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

function hostname(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname();
    }
  } catch {
    // not allowed to ask
  }
  return "localhost";
}
