/**
 * What the chat says in the log while its messages do not go through: not stored (the streams'
 * Redis away, a Cluster shard down), or stored but not handed to the room live (the layer's own
 * connection lost): the start of an outage once, with the first failure's error, and its end
 * with a count. Not once per message: thousands of senders would write thousands of lines a
 * second (each sender is told by an error frame). Nor once per flap: with one shard of a Cluster
 * down, rooms elsewhere are stored while its own are not, so failures and successes alternate
 * message by message. Within a minute of a warning, a new outage is counted without a line, and
 * said with the next end that is logged, or with its next failure once the minute is over.
 */
import { log } from "../mod.ts";

/** How long after a warning another outage is counted without a line of its own. */
export const QUIET_MS = 60_000;

/** The log lines of one chat route's messages that did not go through. */
export class UnstoredMessages {
  /**
   * Messages are not being stored now (the last answer was a failure): read on every stored
   * message, so a field, not a getter.
   */
  outage = false;
  // Not stored since the last line that gave a count.
  #count = 0;
  // The outage under way started within QUIET_MS of a warning, so had none of its own.
  #quiet = false;
  #warnedAt = -Infinity;
  #now: () => number;

  /** `now` is the clock in ms (tests move it). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /**
   * A message to `room` was not sent, or not answered (`unconfirmed`), or stored but not handed
   * to the room's members (`undelivered`: the layer failed, not the store), because of `error`.
   */
  failed(room: string, how: "unsent" | "unconfirmed" | "undelivered", error: unknown): void {
    this.#count++;
    const now = this.#now();
    if (this.outage) {
      // A quiet outage that outlasts the minute is a real one: said now, not at its end.
      if (!this.#quiet || now - this.#warnedAt < QUIET_MS) return;
    }
    this.outage = true;
    this.#quiet = now - this.#warnedAt < QUIET_MS;
    if (this.#quiet) return;
    this.#warnedAt = now;
    const what = how === "undelivered"
      ? `Chat messages are stored but not reaching the rooms' members live (they get them when ` +
        `they next read the room): one to "${room}" was stored, and the layer failed to hand it on`
      : `Chat messages are not being stored: one to "${room}" was not ${
        how === "unconfirmed" ? "confirmed" : "sent"
      }`;
    log.warn(
      `${what}; the next ones are counted, not logged one by one, until one goes through again`,
      error,
    );
  }

  /** A message went through: the end of an outage, said unless it was a quiet one. */
  stored(): void {
    if (!this.outage) return;
    this.outage = false;
    if (this.#quiet && this.#now() - this.#warnedAt < QUIET_MS) return;
    log.info(
      `Chat messages go through again (${this.#count} not sent, not confirmed or not delivered ` +
        "live meanwhile)",
    );
    this.#count = 0;
  }
}
