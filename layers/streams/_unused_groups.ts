/**
 * The in-process streams' groups that were read but never published to (a room opened, nobody
 * wrote in it), the least recently read first, kept up to a bound: rooms named without end must
 * not cost memory without end. What lies beyond the bound is handed back to be forgotten.
 * A graceful close writes their records, so that their epochs outlive a restart.
 */
import { PartlyWrittenError, type Store, type StoreChange } from "../../storage/store.ts";
import { log } from "../../telemetry/log.ts";
import { recordChange, type StreamRecord } from "./_store_layout.ts";
import { EMPTY_STREAM_KEPT_MS } from "./contract.ts";
import type { WrittenState } from "./_write_rounds.ts";

/** The groups read but never published to, up to a bound (see the module's comment). */
export class UnusedGroups<State> {
  #groups = new Map<string, State>();
  readonly #bound: number;

  /** At most `bound` groups are kept. */
  constructor(bound: number) {
    this.#bound = bound;
  }

  /** Notes `group` as read now; returns what is beyond the bound, least recently read first. */
  read(group: string, state: State): [string, State][] {
    this.#groups.delete(group);
    this.#groups.set(group, state);
    const beyond: [string, State][] = [];
    for (const entry of this.#groups) {
      if (this.#groups.size - beyond.length <= this.#bound) break;
      beyond.push(entry);
    }
    for (const [name] of beyond) this.#groups.delete(name);
    return beyond;
  }

  /** Notes a read of `group` when it is one of them (it goes last). */
  readAgain(group: string, state: State): void {
    if (this.#groups.delete(group)) this.#groups.set(group, state);
  }

  /** `group` was published to: no longer one of them. */
  used(group: string): void {
    this.#groups.delete(group);
  }

  /** Every one of them, with its state. */
  entries(): IterableIterator<[string, State]> {
    return this.#groups.entries();
  }
}

/**
 * Writes the record of every unused group whose record this run has not written, or wrote as
 * one that expires (claimed at this run's start: written again, to expire a day from now).
 * Resolves whether any record that names `run` may be in the store; a failure is logged.
 * Without its record, the next run would give the group another epoch, and tell a client that
 * holds this one `complete: false`.
 */
export async function writeUnusedRecords(
  store: Store,
  unused: UnusedGroups<WrittenState>,
  run: string,
): Promise<boolean> {
  const records: StoreChange[] = [];
  for (const [group, state] of unused.entries()) {
    if (state.window === null || (state.recordWritten && !state.recordExpires)) continue;
    const record: StreamRecord = { epoch: state.window.epoch, offset: 0, run };
    records.push(recordChange(group, record, EMPTY_STREAM_KEPT_MS));
  }
  try {
    await store.writeMany(records);
    return records.length > 0;
  } catch (error) {
    log.warn(`Streams: the records of ${records.length} unused group(s) not written`, error);
    // Some may be in the store all the same (several commits), and they name the run.
    return error instanceof PartlyWrittenError && error.written > 0;
  }
}
