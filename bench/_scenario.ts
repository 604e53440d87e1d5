/**
 * The shape every bench scenario has, and the small helpers they share. A scenario is a
 * plain object in the registry (`scenarios/mod.ts`); it measures each server it is given
 * and returns figures per server plus the checks against its targets.
 */
import type { LoadGenerator } from "./_generator.ts";
import type { ServerTarget } from "./_servers.ts";

/** Command-line options. */
export interface BenchOptions {
  /** A short smoke run: fewer rounds, shorter phases, fewer sockets. */
  quick: boolean;
  /** Scenario names to run; null: all. */
  only: string[] | null;
  /**
   * Rounds of the fixed-rate scenarios (paired, or alternating ABBA) and searches per server
   * of the saturation scenarios (the best kept): 3 by default, 1 with `quick`.
   */
  rounds: number;
  /** Where the JSON results go. */
  out: string;
}

/** What a scenario gets. */
export interface ScenarioContext {
  options: BenchOptions;
  /** Servers to measure; the first is the baseline the ratios divide by. */
  targets: ServerTarget[];
  generator: LoadGenerator;
  log(message: string): void;
}

/** How one figure is shown. */
export interface MetricSpec {
  key: string;
  label: string;
  /** Digits after the point. */
  digits: number;
}

/** A target: `ratio` (subject / baseline) compared to `limit`. */
export interface Check {
  name: string;
  scenario: string;
  /** The measured ratio, or the measured value for absolute checks (e.g. loss). */
  value: number;
  comparison: "<=" | ">=";
  limit: number;
  pass: boolean;
  /**
   * A target for later: printed as REPORTED (with whether it was met), neither PASS nor FAIL,
   * and never counted as a failure.
   */
  reported?: boolean;
}

/** What a scenario returns. */
export interface ScenarioResult {
  name: string;
  title: string;
  metrics: MetricSpec[];
  /** Figures per server name. */
  figures: Record<string, Record<string, number>>;
  checks: Check[];
  notes: string[];
  /** The servers of `figures`, baseline first, when not the run's targets (scale-out). */
  servers?: string[];
}

/** A registered scenario. */
export interface Scenario {
  name: string;
  title: string;
  run(context: ScenarioContext): Promise<ScenarioResult>;
}

/** `subject / baseline`, or NaN when the baseline is 0. */
export function ratio(subject: number, baseline: number): number {
  return baseline === 0 ? (subject === 0 ? 1 : Number.NaN) : subject / baseline;
}

/** A ratio check of `metric` between the second and the first target. */
export function ratioCheck(
  result: Pick<ScenarioResult, "name" | "figures">,
  targets: ServerTarget[],
  check: { name: string; metric: string; comparison: "<=" | ">="; limit: number },
): Check {
  const [baseline, subject] = targets;
  const value = ratio(
    result.figures[subject.name]?.[check.metric] ?? Number.NaN,
    result.figures[baseline.name]?.[check.metric] ?? Number.NaN,
  );
  return {
    name: check.name,
    scenario: result.name,
    value,
    comparison: check.comparison,
    limit: check.limit,
    pass: check.comparison === "<=" ? value <= check.limit : value >= check.limit,
  };
}

/**
 * The order servers run in, per round: ABBA... so a drift in machine load over the run
 * weighs on every server alike.
 */
export function roundOrder<T>(targets: T[], round: number): T[] {
  return round % 2 === 0 ? [...targets] : [...targets].reverse();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bytes as MiB. */
export function mib(bytes: number): number {
  return bytes / (1024 * 1024);
}

/** A unique set name for the generator. */
export function setName(scenario: string, server: string, round: number): string {
  return `${scenario}-${server}-${round}-${crypto.randomUUID().slice(0, 8)}`;
}

/** The chat's WebSocket path, the same on every server under test. */
export const CHAT_PATH = "/ws/chat/{room}/";
