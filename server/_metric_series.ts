/**
 * The Prometheus series a `ServerMetrics` renders, and where each reads its value at scrape
 * time: the route meters, the group layer and streams, the Redis connections' health, and the
 * process itself. Nothing here counts: every value is read from what already counts it.
 */
import type { GroupLayer } from "../layers/layer.ts";
import type { GroupStreams } from "../layers/streams/contract.ts";
import { redisHealth } from "../storage/redis_health.ts";
import type { Metric, MetricsRegistry, Sample } from "../telemetry/metrics.ts";
import { REFUSAL_REASONS, type RouteMeter } from "./_route_meter.ts";
import { cpuSeconds, type LagMonitor } from "./_process_probes.ts";

/** What the series read at scrape time. */
export interface SeriesInputs {
  /** The meter of each WebSocket route, by pattern (a meter made later is read too). */
  routes: ReadonlyMap<string, RouteMeter>;
  /** The group layer (deliveries, drops, groups). */
  layer: GroupLayer;
  /** The streams (history write times), when they measure them. */
  streams?: GroupStreams;
  /** The event loop's lag. */
  lag: LagMonitor;
  /** When the process started counting (ms since the epoch). */
  startedAt: number;
}

/** Defines every series on `r`, in the order they are rendered. */
export function defineSeries(r: MetricsRegistry, inputs: SeriesInputs): void {
  defineRouteSeries(r, inputs);
  defineDeliverySeries(r, inputs);
  defineRedisSeries(r);
  defineProcessSeries(r, inputs);
}

// A series per route pattern (and reason or code): as many as the app's route table holds, which
// is the app's own choice, so the families take no fixed bound (an app of 100 socket routes
// would pass 1,000 refusal series, and every scrape would fail).
const PER_ROUTE = { maxSeries: Infinity };

function defineRouteSeries(r: MetricsRegistry, inputs: SeriesInputs): void {
  const routes = inputs.routes;
  const route = ["route"];
  const perRoute = (metric: Metric<Sample>, pick: (meter: RouteMeter) => number) =>
    r.onCollect(() => {
      for (const meter of routes.values()) metric.labels(meter.route).value = pick(meter);
    });
  perRoute(
    r.gauge(
      "channels_connections_open",
      "WebSockets open now, by route pattern.",
      route,
      PER_ROUTE,
    ),
    (meter) => meter.open,
  );
  perRoute(
    r.counter(
      "channels_handshakes_accepted_total",
      "WebSocket handshakes accepted.",
      route,
      PER_ROUTE,
    ),
    (meter) => meter.accepted,
  );
  perRoute(
    r.counter(
      "channels_handshakes_never_opened_total",
      "WebSockets upgraded whose client left before they opened; Deno keeps each one's " +
        "descriptor until the process exits.",
      route,
      PER_ROUTE,
    ),
    (meter) => meter.neverOpened,
  );
  const refused = r.counter(
    "channels_handshakes_refused_total",
    "WebSocket handshakes refused, by reason.",
    ["route", "reason"],
    PER_ROUTE,
  );
  r.onCollect(() => {
    for (const meter of routes.values()) {
      for (const reason of REFUSAL_REASONS) {
        refused.labels(meter.route, reason).value = meter.refused[reason];
      }
    }
  });
  perRoute(
    r.counter("channels_frames_received_total", "WebSocket frames from clients.", route, PER_ROUTE),
    (meter) => meter.framesIn,
  );
  perRoute(
    r.counter("channels_received_bytes_total", "Bytes of frames from clients.", route, PER_ROUTE),
    (meter) => meter.bytesIn,
  );
  perRoute(
    r.counter(
      "channels_frames_sent_total",
      "WebSocket frames to clients (a batched frame counts once).",
      route,
      PER_ROUTE,
    ),
    (meter) => meter.framesOut,
  );
  perRoute(
    r.counter("channels_sent_bytes_total", "Bytes of frames to clients.", route, PER_ROUTE),
    (meter) => meter.bytesOut,
  );
  const closes = r.counter(
    "channels_closes_total",
    "WebSockets closed, by close code (codes outside the known set as other).",
    ["route", "code"],
    PER_ROUTE,
  );
  r.onCollect(() => {
    for (const meter of routes.values()) {
      for (const [code, count] of meter.closes) closes.labels(meter.route, code).value = count;
    }
  });
}

function defineDeliverySeries(r: MetricsRegistry, inputs: SeriesInputs): void {
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
    const stats = inputs.layer.stats();
    if (stats.groupSends !== undefined) sends.labels().value = stats.groupSends;
    deliveries.labels().value = stats.delivered;
    layerDropped.labels().value = stats.dropped;
    groups.labels().value = stats.groups;
    channels.labels().value = stats.channels;
    const meters = [...inputs.routes.values()];
    const sum = (pick: (meter: RouteMeter) => number) =>
      meters.reduce((total, meter) => total + pick(meter), 0);
    socketDropped.labels("socket_congested").value = sum((meter) => meter.congested);
    socketDropped.labels("queue_full").value = sum((meter) => meter.queueFull);
    socketDropped.labels("before_open").value = sum((meter) => meter.beforeOpen);
  });
  const streams = inputs.streams;
  if (streams?.writeFailures !== undefined) {
    const failures = r.counter(
      "channels_history_write_failures_total",
      "Batches of history (in-process streams) that could not be written; each is tried again.",
    );
    r.onCollect(() => failures.labels().value = streams.writeFailures ?? 0);
  }
  const writes = streams?.writeSeconds;
  if (writes !== undefined) {
    r.histogram(
      "channels_history_write_seconds",
      "Time to write history: a batch (in-process), a publish (Redis), a commit of publishes (KV).",
    ).attach(writes);
  }
}

function defineRedisSeries(r: MetricsRegistry): void {
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

function defineProcessSeries(r: MetricsRegistry, inputs: SeriesInputs): void {
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
  r.onCollect(() => {
    lag.labels().value = inputs.lag.last;
    lagMax.labels().value = inputs.lag.max();
    rss.labels().value = Deno.memoryUsage().rss;
    started.labels().value = inputs.startedAt / 1000;
    const seconds = cpuSeconds();
    if (seconds != null) cpu.labels().value = seconds;
  });
}
