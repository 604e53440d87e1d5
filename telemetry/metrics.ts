/**
 * A tiny metrics registry: counters, gauges and histograms with fixed label names, rendered in
 * the Prometheus text exposition format (version 0.0.4). Each series is a plain object whose
 * `value` a hot path may increment directly, or that a collector fills from a `stats()` read
 * at scrape time; nothing is computed until {@linkcode MetricsRegistry.render} runs.
 *
 * Label values must come from small fixed sets (a route pattern, a reason, a close code):
 * a family refuses more than {@linkcode MAX_SERIES_PER_METRIC} series rather than grow
 * without bound, unless it is made with a larger `maxSeries` (a family per route of the app's
 * route table, whose size is the app's own choice).
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry();
 * const frames = registry.counter("app_frames_total", "Frames received.", ["route"]);
 * const chat = frames.labels("/ws/chat/:room/"); // made once, when the route table is built
 * chat.value++; // on the hot path
 * registry.render(); // "# HELP app_frames_total Frames received.\n# TYPE ...\n"
 * ```
 */

/** One time series of a counter or a gauge. */
export interface Sample {
  /** The current value; a counter's only ever grows. */
  value: number;
}

/** What a family is, as its `# TYPE` line says. */
export type MetricType = "counter" | "gauge" | "histogram";

/** The most series one family may hold: labels are meant to come from small fixed sets. */
export const MAX_SERIES_PER_METRIC = 1000;

/** How many series a family may hold (see {@linkcode MAX_SERIES_PER_METRIC}). */
export interface SeriesBound {
  /** The most label combinations; `Infinity` for labels bounded elsewhere (a route table). */
  maxSeries?: number;
}

const zero = (): Sample => ({ value: 0 });

/** Upper bounds in seconds for latencies from 1 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Observations counted in fixed buckets, with their sum: a Prometheus histogram's series. */
export class Histogram {
  /** The buckets' upper bounds, ascending (the `+Inf` bucket is implied). */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last entry is above every bound. */
  readonly counts: number[];
  /** The sum of every observation. */
  sum = 0;
  /** How many observations there were. */
  count = 0;

  /** A histogram over `bounds` (default {@linkcode LATENCY_BUCKETS}). */
  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new RangeError("Bucket bounds must ascend");
    }
    this.bounds = bounds;
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  /** Counts one observation, e.g. a duration in seconds. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A metric family: one name, one type, fixed label names, a series per label values. */
export class Metric<T extends Sample | Histogram> {
  /** The metric's name, e.g. `channels_frames_received_total`. */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  /** Counter, gauge or histogram. */
  readonly type: MetricType;
  /** The label names every series has, in order. */
  readonly labelNames: readonly string[];
  #series = new Map<string, { labels: string; series: T }>();
  #make: () => T;
  #maxSeries: number;

  /** Use {@linkcode MetricsRegistry}'s `counter`, `gauge` and `histogram` instead. */
  constructor(
    name: string,
    help: string,
    type: MetricType,
    labelNames: readonly string[],
    make: () => T,
    maxSeries: number = MAX_SERIES_PER_METRIC,
  ) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`Invalid metric name "${name}"`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label === "le") {
        throw new TypeError(`Invalid label name "${label}" of metric "${name}"`);
      }
    }
    this.name = name;
    this.help = help;
    this.type = type;
    this.labelNames = labelNames;
    this.#make = make;
    this.#maxSeries = maxSeries;
  }

  /** The series of these label values (one per label name), made on first use. */
  labels(...values: string[]): T {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(
        `Metric "${this.name}" takes ${this.labelNames.length} label value(s), got ${values.length}`,
      );
    }
    const key = values.join("\u0000");
    let entry = this.#series.get(key);
    if (entry === undefined) {
      if (this.#series.size >= this.#maxSeries) {
        throw new RangeError(
          `Metric "${this.name}" has ${this.#maxSeries} series already: ` +
            `label values must come from a small fixed set`,
        );
      }
      const labels = values.map((value, i) => `${this.labelNames[i]}="${escapeLabel(value)}"`)
        .join(",");
      entry = { labels, series: this.#make() };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  /** Uses `series` as the series of these label values (a histogram kept by its owner). */
  attach(series: T, ...values: string[]): void {
    this.labels(...values); // validates, and reserves the place
    this.#series.get(values.join("\u0000"))!.series = series;
  }

  /** Forgets every series (a collector that sets them all afresh, e.g. for what is open now). */
  clear(): void {
    this.#series.clear();
  }

  /**
   * The family in the text format, or `""` when it has no series yet; `first` (`name="value"`
   * pairs) goes before each series' own labels.
   */
  render(first = ""): string {
    if (this.#series.size === 0) return "";
    let text = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    for (const entry of this.#series.values()) {
      const series = entry.series;
      const labels = first === ""
        ? entry.labels
        : entry.labels === ""
        ? first
        : `${first},${entry.labels}`;
      text += series instanceof Histogram
        ? renderHistogram(this.name, labels, series)
        : `${this.name}${labels === "" ? "" : `{${labels}}`} ${formatValue(series.value)}\n`;
    }
    return text;
  }
}

/** The families of one app, and the collectors that fill some of them at scrape time. */
export class MetricsRegistry {
  #metrics = new Map<string, Metric<Sample | Histogram>>();
  #collectors: (() => void)[] = [];
  /** Labels every series carries, first (see `labelAll`), rendered once. */
  #common = "";

  /**
   * A counter family: a value that only grows; its name ends in `_total`. `maxSeries` (default
   * {@linkcode MAX_SERIES_PER_METRIC}) bounds how many label combinations it takes.
   */
  counter(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    options: SeriesBound = {},
  ): Metric<Sample> {
    if (!name.endsWith("_total")) throw new TypeError(`Counter "${name}" must end in _total`);
    return this.#add(
      new Metric<Sample>(name, help, "counter", labelNames, zero, options.maxSeries),
    );
  }

  /** A gauge family: a value that goes up and down; `maxSeries` as for a counter. */
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    options: SeriesBound = {},
  ): Metric<Sample> {
    return this.#add(new Metric<Sample>(name, help, "gauge", labelNames, zero, options.maxSeries));
  }

  /** A histogram family over `bounds`; `maxSeries` as for a counter. */
  histogram(
    name: string,
    help: string,
    options: { labelNames?: readonly string[]; bounds?: readonly number[] } & SeriesBound = {},
  ): Metric<Histogram> {
    const make = () => new Histogram(options.bounds);
    return this.#add(
      new Metric<Histogram>(
        name,
        help,
        "histogram",
        options.labelNames ?? [],
        make,
        options.maxSeries,
      ),
    );
  }

  /** Runs `collect` before every render, to copy counts read from `stats()` into series. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /**
   * Gives every series of every family the label `name="value"`, before its own: for figures
   * several counters of one process keep apart (each Worker of `--workers` its own).
   */
  labelAll(name: string, value: string): void {
    if (!LABEL_NAME.test(name) || name === "le") {
      throw new TypeError(`Invalid label name "${name}"`);
    }
    const pair = `${name}="${escapeLabel(value)}"`;
    this.#common = this.#common === "" ? pair : `${this.#common},${pair}`;
  }

  /** Every family with a series, in the text format. */
  render(): string {
    for (const collect of this.#collectors) collect();
    let text = "";
    for (const metric of this.#metrics.values()) text += metric.render(this.#common);
    return text;
  }

  #add<T extends Sample | Histogram>(metric: Metric<T>): Metric<T> {
    if (this.#metrics.has(metric.name)) {
      throw new TypeError(`Metric "${metric.name}" is registered already`);
    }
    this.#metrics.set(metric.name, metric as unknown as Metric<Sample | Histogram>);
    return metric;
  }
}

/** The media type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function renderHistogram(name: string, labels: string, histogram: Histogram): string {
  const sep = labels === "" ? "" : ",";
  let text = "";
  let cumulative = 0;
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i];
    text += `${name}_bucket{${labels}${sep}le="${formatValue(bound)}"} ${cumulative}\n`;
  });
  text += `${name}_bucket{${labels}${sep}le="+Inf"} ${histogram.count}\n`;
  const braces = labels === "" ? "" : `{${labels}}`;
  text += `${name}_sum${braces} ${formatValue(histogram.sum)}\n`;
  text += `${name}_count${braces} ${histogram.count}\n`;
  return text;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
