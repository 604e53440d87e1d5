/**
 * Plain-text tables of the bench results: one per scenario with each server's figures and the
 * ratio to the baseline, then the targets with PASS/FAIL.
 */
import { type Check, ratio, type ScenarioResult } from "./_scenario.ts";

/** Formats one scenario's figures; the first server listed is the baseline. */
export function formatScenario(result: ScenarioResult, servers: string[]): string {
  const [baseline, ...others] = servers;
  const header = [
    "metric",
    ...servers,
    ...others.map((name) => `${name}/${baseline}`),
  ];
  const rows = result.metrics.map((metric) => {
    const values = servers.map((name) => result.figures[name]?.[metric.key]);
    const ratios = others.map((name) =>
      ratio(result.figures[name]?.[metric.key] ?? Number.NaN, values[0] ?? Number.NaN)
    );
    return [
      metric.label,
      ...values.map((value) => formatNumber(value, metric.digits)),
      ...ratios.map((value) => formatNumber(value, 2)),
    ];
  });
  const notes = result.notes.map((note) => `  ${note}`).join("\n");
  return `\n== ${result.title} ==\n${table([header, ...rows])}${notes ? `\n${notes}` : ""}`;
}

/** Formats the targets and whether each holds. */
export function formatChecks(checks: Check[]): string {
  const rows = checks.map((check) => {
    const absolute = check.limit === 0;
    const unit = absolute ? "" : "x";
    return [
      check.name,
      check.scenario,
      `${formatNumber(check.value, absolute ? 0 : 2)}${unit}`,
      `${check.comparison} ${check.limit}${unit}`,
      check.reported
        ? `REPORTED (${check.pass ? "met" : "not met"})`
        : check.pass
        ? "PASS"
        : "FAIL",
    ];
  });
  return `\n== Targets (ours / raw) ==\n${
    table([["target", "scenario", "measured", "limit", "result"], ...rows])
  }`;
}

function formatNumber(value: number | undefined, digits: number): string {
  if (value === undefined || Number.isNaN(value)) return "-";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) =>
    row.map((cell, column) =>
      column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])
    )
      .join("  ")
  ).join("\n");
}
