/**
 * Which groups the in-process streams let go of when they hold more than their bound: rooms
 * written in and gone quiet, the least recently used first. Every room ever written in would
 * otherwise stay in memory for good. One let go is read again from the store on its next use,
 * with its epoch, as after a clean restart.
 */
import type { RetainedWindow } from "./_window.ts";
import type { WrittenState } from "./_write_rounds.ts";

/** What the choice reads of a group's state. */
export interface KeptState extends WrittenState {
  /** Publishes and reads waiting for the group to load. */
  queue: unknown[];
  /** When it was last published to or read, as a count of uses (the latest is largest). */
  used: number;
}

/**
 * The groups of `groups` to let go so that at most `bound` remain, least recently used first;
 * fewer when not enough are quiet. Quiet: loaded, published to, nothing waiting, everything
 * written, its record written by this run and not an unused group's (so a read keeps its epoch).
 */
export function groupsToLetGo<S extends KeptState>(
  groups: ReadonlyMap<string, S>,
  bound: number,
): [string, S & { window: RetainedWindow }][] {
  if (groups.size <= bound) return [];
  const quiet: [string, S & { window: RetainedWindow }][] = [];
  for (const [group, state] of groups) {
    const window = state.window;
    if (
      window !== null && window.offset > 0 && window.offset === state.written &&
      state.queue.length === 0 && !state.dirty && state.stale.length === 0 &&
      state.recordWritten && !state.recordExpires
    ) quiet.push([group, state as S & { window: RetainedWindow }]);
  }
  quiet.sort((a, b) => a[1].used - b[1].used);
  return quiet.slice(0, groups.size - bound);
}
