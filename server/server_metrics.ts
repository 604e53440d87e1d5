/**
 * What the server counts, and how it is read: the Prometheus text for `GET /metrics`, and a
 * per-process snapshot for the admin page. One {@linkcode ServerMetrics} per set of services.
 *
 * The hot paths only add to plain numbers: each WebSocket route has a {@linkcode RouteMeter}
 * (in `_route_meter.ts`). Everything a part already counts (the layer's deliveries and drops,
 * the streams' write times, the Redis connections' outages) is read from it at scrape time, not
 * counted twice; the series and where each reads from are in `_metric_series.ts`.
 *
 * @example
 * ```ts
 * import type { Services } from "@channels/deno";
 *
 * declare const services: Services;
 * const metrics = services.metrics;
 * const text = metrics.render(); // the Prometheus text format
 * const row = metrics.snapshot(); // { connections, groups, framesReceived, ... }
 * ```
 */
import type { GroupLayer, GroupSize } from "../layers/layer.ts";
import type { GroupStreams } from "../layers/streams/contract.ts";
import { utf8Length } from "../telemetry/utf8.ts";
import { MetricsRegistry } from "../telemetry/metrics.ts";
import { RouteMeter } from "./_route_meter.ts";
import { hostname, LagMonitor } from "./_process_probes.ts";
import { defineSeries } from "./_metric_series.ts";
import { isSessionGroup } from "../auth/sessions.ts";
import { isTokenGroup } from "../auth/token_revocations.ts";
import { isBrowserGroup } from "../auth/browser_group.ts";

export { utf8Length };
export { REFUSAL_REASONS, type RefusalReason, RouteMeter } from "./_route_meter.ts";

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

const LARGEST_GROUPS = 20;
// A session's group (one per signed-in browser), a browser's (its anonymous sockets) or a user's
// token group says nothing about the site's load.
const isPerUserGroup = (group: string): boolean =>
  isSessionGroup(group) || isBrowserGroup(group) || isTokenGroup(group);

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

  /**
   * Labels every series with `worker="<name>"`: each Worker of `--workers` counts its own, and
   * a scrape reaches one of them, so without it one series would jump between their figures.
   */
  nameWorker(name: string): void {
    this.#registry.labelAll("worker", name);
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
      // Thousands of per-user groups would push every other group off the list.
      largestGroups: this.#sources.layer.groupSizes?.(LARGEST_GROUPS, isPerUserGroup) ?? [],
      framesReceived: sum((meter) => meter.framesIn),
      framesSent: sum((meter) => meter.framesOut),
      deliveries: stats.delivered,
      dropped: stats.dropped + sum((meter) => meter.beforeOpen),
      rssBytes: Deno.memoryUsage().rss,
      eventLoopLagMs: this.#lag.last * 1000,
    };
  }

  #define(): void {
    defineSeries(this.#registry, {
      routes: this.#routes,
      layer: this.#sources.layer,
      streams: this.#sources.streams,
      lag: this.#lag,
      startedAt: this.#startedAt,
    });
  }
}
