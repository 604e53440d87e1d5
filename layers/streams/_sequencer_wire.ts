/**
 * The messages between the Workers of `--workers N` and the stream sequencer of their parent
 * (`sequencer.ts`, `sequenced.ts`), one `MessagePort` per Worker. A port keeps the order of
 * its messages, so a Worker receives its groups' events in offset order, and the answer to
 * its publish after the event itself.
 */
import type { LayerEvent } from "../layer.ts";
import type { StreamEvent, StreamPosition, StreamRead, StreamRetention } from "./contract.ts";

/** A Worker asks; `id` is unique among its requests waiting for an answer. */
export type SequencerRequest =
  | {
    type: "publish";
    id: number;
    group: string;
    event: LayerEvent;
    retention?: StreamRetention;
  }
  | {
    type: "since";
    id: number;
    group: string;
    position: StreamPosition;
    maxBytes?: number;
    pageBytes?: number;
  }
  | { type: "latest"; id: number; group: string; count: number };

/** The sequencer answers a request, or hands a Worker an event of a group. */
export type SequencerMessage =
  /** A streamed event, for the Worker's members of `group`. */
  | { type: "event"; group: string; event: StreamEvent }
  /** A publish took `offset`; its event went out to every Worker just before. */
  | { type: "published"; id: number; offset: number; epoch: string; otherWorkers: number }
  | { type: "read"; id: number; read: StreamRead }
  /** The request failed; `name` keeps a `TypeError` (bad input) apart from the rest. */
  | { type: "failed"; id: number; name: string; error: string };
