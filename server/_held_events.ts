/**
 * What a socket's stream follower (`_follower.ts`) holds while it reads its stream (its entry,
 * a gap, a new epoch): the streamed events that came meanwhile, at most
 * {@linkcode HELD_AT_MOST}, and the furthest one seen, where the reads must reach. A read that
 * found a gap no longer kept waits here for the events still on their way.
 */
import type { LayerEvent } from "../layers/layer.ts";

/**
 * The most streamed events a socket holds while it reads its stream: what comes beyond them is
 * read from the stream afterwards, which holds every one of them.
 */
export const HELD_AT_MOST = 128;

/**
 * How long a socket waits for the events of a gap its stream no longer keeps, which may still be
 * on their way from another process, before it says they are lost.
 */
export const IN_FLIGHT_MS = 500;

/** The events held while one read of a follower's stream is under way. */
export class HeldEvents {
  /** Held, in the order they came (`sorted()` puts them in the stream's). */
  events: LayerEvent[] = [];
  /** The furthest streamed event seen while reading: where the reads must reach. */
  ahead: LayerEvent | null = null;
  #arrived: (() => void) | null = null;

  /** Holds `event`; `epoch` is the follower's own, for telling which epoch is newer. */
  add(event: LayerEvent, epoch: string): void {
    if (this.events.length < HELD_AT_MOST) this.events.push(event);
    else this.#inPlaceOfFurthest(event);
    this.#arrived?.();
    const ahead = this.ahead;
    if (
      ahead === null ||
      (event.epoch === ahead.epoch
        ? (event.offset as number) > (ahead.offset as number)
        : event.epoch !== epoch) // an epoch newer than ours, and than the one `ahead` has
    ) {
      this.ahead = event;
    }
  }

  // Full: an event nearer the gap takes the place of the furthest one held. That one the stream
  // keeps longer (it keeps the latest), while those of the gap may be on their way only.
  #inPlaceOfFurthest(event: LayerEvent): void {
    let furthest = -1;
    for (let at = 0; at < this.events.length; at++) {
      const held = this.events[at];
      if (
        held.epoch === event.epoch && (held.offset as number) > (event.offset as number) &&
        (furthest < 0 || (held.offset as number) > (this.events[furthest].offset as number))
      ) {
        furthest = at;
      }
    }
    if (furthest >= 0) this.events[furthest] = event;
  }

  /** The held events, in offset order. */
  sorted(): LayerEvent[] {
    return this.events.sort(byOffset);
  }

  /** Resolves true when an event is held before `ms` pass, else false. */
  arrival(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#arrived = null;
        resolve(false);
      }, ms);
      this.#arrived = () => {
        clearTimeout(timer);
        this.#arrived = null;
        resolve(true);
      };
    });
  }
}

function byOffset(a: LayerEvent, b: LayerEvent): number {
  return (a.offset as number) - (b.offset as number);
}
