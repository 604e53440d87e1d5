/**
 * One group's retained events in memory, oldest first, with the times they were appended:
 * what the in-process streams keep and read. Trimming drops from the front through a head
 * index, so a busy stream does not shift its array on every append.
 */
import { retainedAtMost, type StreamEvent, type StreamRetention } from "./contract.ts";

/** A stream's retained events and its counters. */
export class RetainedWindow {
  #events: StreamEvent[] = [];
  #times: number[] = [];
  #head = 0;
  /** The stream's epoch. */
  epoch: string;
  /** The latest offset (0 when nothing was ever appended). */
  offset: number;

  constructor(epoch: string, offset: number) {
    this.epoch = epoch;
    this.offset = offset;
  }

  /** How many events are retained. */
  get size(): number {
    return this.#events.length - this.#head;
  }

  /** Appends an event already given the next offset, at `time` (ms since the epoch). */
  append(event: StreamEvent, time: number): void {
    this.#events.push(event);
    this.#times.push(time);
    this.offset = event.offset;
  }

  /** Drops what `retention` no longer keeps as of `now`; returns how many were dropped. */
  trim(retention: StreamRetention, now: number): number {
    const most = retainedAtMost(retention);
    const oldest = now - retention.seconds * 1000;
    let dropped = 0;
    while (this.size > retention.messages) {
      if (this.size <= most && this.#times[this.#head] > oldest) break;
      this.#head++;
      dropped++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head);
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
    return dropped;
  }

  /** Retained events with an offset above `offset`, oldest first. */
  after(offset: number): StreamEvent[] {
    const first = this.#events[this.#head]?.offset;
    if (first === undefined) return [];
    // Offsets are consecutive: the index is arithmetic.
    const from = this.#head + Math.max(0, offset + 1 - first);
    return this.#events.slice(from);
  }

  /** The last `count` retained events, oldest first. */
  last(count: number): StreamEvent[] {
    return this.#events.slice(Math.max(this.#head, this.#events.length - count));
  }

  /** Retained events above `offset` with their times, oldest first (for persistence). */
  *entriesAfter(offset: number): IterableIterator<[StreamEvent, number]> {
    const first = this.#events[this.#head]?.offset ?? 0;
    for (let i = this.#head + Math.max(0, offset + 1 - first); i < this.#events.length; i++) {
      yield [this.#events[i], this.#times[i]];
    }
  }

  /** The oldest retained offset, or `offset + 1` when nothing is retained. */
  get firstOffset(): number {
    return this.#events[this.#head]?.offset ?? this.offset + 1;
  }
}
