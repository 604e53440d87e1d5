/**
 * A channel's receiving end for the layer conformance suite: it records every event and lets
 * a test await one, because a layer between processes delivers asynchronously.
 */
import type { GroupLayer, LayerEvent } from "../../layers/layer.ts";

/** Events one channel received, in order. */
export class Inbox {
  readonly channel: string;
  readonly events: LayerEvent[] = [];
  /** How many times the layer called the receiver, refusals included. */
  calls = 0;
  /** While true the receiver refuses events, as an over-capacity connection does. */
  refusing = false;
  /** The receiver throws on events of this `n`, as a failing handler does. */
  throwOn: unknown = undefined;
  #waiters = new Set<() => void>();
  #timeoutMs: number;

  /** The receiver: a new channel's on `layer`, or (`null`) one to `listen` with. */
  readonly deliver = (event: LayerEvent): boolean => {
    this.calls++;
    if (this.refusing) return false;
    if (this.throwOn !== undefined && event.n === this.throwOn) throw new Error("receiver failed");
    this.events.push(event);
    for (const waiter of this.#waiters) waiter();
    return true;
  };

  constructor(layer: GroupLayer | null, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.channel = layer === null ? "" : layer.newChannel(this.deliver);
  }

  /** How many received events have `type` (and `n`, when given). */
  count(type: string, n?: number): number {
    return this.events.filter((event) => event.type === type && (n === undefined || event.n === n))
      .length;
  }

  /** The `n` field of every event of `type`, in arrival order. */
  numbers(type: string): unknown[] {
    return this.events.filter((event) => event.type === type).map((event) => event.n);
  }

  /** Resolves once `done()` holds; fails the test after the timeout, naming `what`. */
  until(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out after ${this.#timeoutMs} ms waiting for ${what}`));
      }, this.#timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  /** Resolves once an event of `type` (with `n`, when given) has arrived. */
  receives(type: string, n?: number): Promise<void> {
    const label = n === undefined ? `"${type}"` : `"${type}" #${n}`;
    return this.until(() => this.count(type, n) > 0, `${label} on ${this.channel}`);
  }
}
