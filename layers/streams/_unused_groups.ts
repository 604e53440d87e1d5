/**
 * The in-process streams' groups that were read but never published to (a room opened, nobody
 * wrote in it), the least recently read first, kept up to a bound: rooms named without end must
 * not cost memory without end. What lies beyond the bound is handed back to be forgotten.
 */
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
