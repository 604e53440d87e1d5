/**
 * The in-process streams' memory budget: when every window together holds more characters than
 * it allows, the largest windows are brought down to one level, oldest events first, until they
 * hold `keep` characters together. Small rooms keep their history; a flood of large ones loses
 * its oldest events. Recovery from a dropped offset then says `complete: false`, as it does past
 * the retention window.
 */
import type { RetainedWindow } from "./_window.ts";
import { log } from "../../telemetry/log.ts";

/** A stream over its budget is brought down to this share of it, so trims come in batches. */
const BUDGET_AFTER_TRIM = 0.9;

/**
 * Brings the windows of `groups` (holding `total` characters together) down to
 * {@linkcode BUDGET_AFTER_TRIM} of `budget`, with a warning; returns how many characters were
 * freed.
 */
export function trimGroupsToBudget(
  groups: Iterable<{ window: RetainedWindow | null }>,
  total: number,
  budget: number,
): number {
  const windows: RetainedWindow[] = [];
  for (const state of groups) {
    if (state.window !== null) windows.push(state.window);
  }
  const { freed, trimmed } = trimToBudget(windows, total, Math.floor(budget * BUDGET_AFTER_TRIM));
  log.warn(
    `Streams: over their memory budget (${budget} characters); the oldest ` +
      `events of the ${trimmed} largest stream(s) were dropped`,
  );
  return freed;
}

/**
 * Trims `windows` (holding `total` characters together) down to `keep`; returns how many
 * characters were freed and how many windows were trimmed.
 */
export function trimToBudget(
  windows: Iterable<RetainedWindow>,
  total: number,
  keep: number,
): { freed: number; trimmed: number } {
  const largestFirst = [...windows]
    .filter((window) => window.characters > 0)
    .sort((a, b) => b.characters - a.characters);
  const excess = total - keep;
  // The level at which the windows above it hold `excess` characters more than it, each.
  let level = 0;
  let above = 0;
  for (let i = 0; i < largestFirst.length; i++) {
    above += largestFirst[i].characters;
    const next = largestFirst[i + 1]?.characters ?? 0;
    if (above - (i + 1) * next >= excess) {
      level = Math.floor((above - excess) / (i + 1));
      break;
    }
  }
  let freed = 0;
  let trimmed = 0;
  for (const window of largestFirst) {
    if (window.characters <= level) break;
    freed += window.dropOldestTo(level);
    trimmed++;
  }
  return { freed, trimmed };
}
