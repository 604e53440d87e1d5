/**
 * Retained group streams in a Worker of `--workers N`: every publish and read goes to the
 * parent's sequencer (`sequencer.ts`) through a `MessagePort`, and every group event comes back
 * from it, to be delivered to this Worker's members of the group.
 *
 * Events reach this Worker in offset order, since one sequencer gives the offsets and a port
 * keeps its order; the sequencer sends them to every Worker, so nothing of a stream goes
 * through the layer's BroadcastChannel. A publish resolves after its own event was delivered
 * here, with this Worker's counts of that delivery.
 */
import type { LayerEvent, SendResult } from "../layer.ts";
import type {
  GroupStreams,
  PublishOptions,
  SinceOptions,
  StreamEvent,
  StreamPosition,
  StreamPublished,
  StreamRead,
} from "./contract.ts";
import type { SequencerMessage, SequencerRequest } from "./_sequencer_wire.ts";
import { Histogram } from "../../telemetry/metrics.ts";
import { validateCount } from "./contract.ts";

/** Requests that may wait for the sequencer at once; more are refused at once. */
export const MAX_WAITING_REQUESTS = 10_000;

/** The part of the layer that delivers a streamed event to this Worker's members alone. */
export interface LocalDelivery {
  deliverPublished(group: string, event: LayerEvent): SendResult;
}

type Pending = {
  resolve: (message: SequencerMessage) => void;
  reject: (error: Error) => void;
  /** For a publish: its group, whose local deliveries are kept until it is answered. */
  group?: string;
};

/** {@linkcode GroupStreams} of a Worker, served by the parent's sequencer. */
export class SequencedStreams implements GroupStreams {
  #port: MessagePort;
  #layer: LocalDelivery;
  #pending = new Map<number, Pending>();
  #nextId = 0;
  // Per group with publishes waiting: this Worker's delivery of each offset since, so a
  // publish's answer can carry the delivery of its own event (which came just before it).
  #deliveries = new Map<string, { waiting: number; byOffset: Map<number, SendResult> }>();
  #closing: Promise<void> | null = null;
  #settled: (() => void) | null = null;
  /** A publish's round trip to the sequencer (the parent writes to Deno KV in batches). */
  readonly writeSeconds: Histogram = new Histogram();

  /** Streams over `port` (from `StreamSequencer.connect`), delivering through `layer`. */
  constructor(port: MessagePort, layer: LocalDelivery) {
    this.#port = port;
    this.#layer = layer;
    port.onmessage = (message: MessageEvent<SequencerMessage>) => this.#receive(message.data);
  }

  async publish(
    group: string,
    event: LayerEvent,
    options?: PublishOptions,
  ): Promise<StreamPublished> {
    // Checked by the sequencer's streams, before the event takes an offset.
    const request: SequencerRequest = { type: "publish", id: 0, group, event };
    if (options?.retention !== undefined) request.retention = options.retention;
    const started = performance.now();
    const answer = await this.#ask(request, group);
    this.writeSeconds.observe((performance.now() - started) / 1000);
    if (answer.type !== "published") throw new Error(`Unexpected answer: ${answer.type}`);
    const own = this.#takeDelivery(group, answer.offset);
    return {
      delivered: own?.delivered ?? 0,
      dropped: own?.dropped ?? 0,
      remoteProcesses: answer.otherWorkers,
      offset: answer.offset,
      epoch: answer.epoch,
    };
  }

  async since(
    group: string,
    position: StreamPosition,
    options: SinceOptions = {},
  ): Promise<StreamRead> {
    // The position is checked by the sequencer's streams.
    const { maxBytes, pageBytes } = options;
    return this.#read(
      await this.#ask({ type: "since", id: 0, group, position, maxBytes, pageBytes }),
    );
  }

  async latest(group: string, count: number): Promise<StreamRead> {
    validateCount(count);
    return this.#read(await this.#ask({ type: "latest", id: 0, group, count }));
  }

  /** Waits for the answers still due, then lets the port go. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      if (this.#pending.size > 0) await new Promise<void>((resolve) => this.#settled = resolve);
      this.#port.close();
    })();
  }

  #read(answer: SequencerMessage): StreamRead {
    if (answer.type !== "read") throw new Error(`Unexpected answer: ${answer.type}`);
    return answer.read;
  }

  #ask(request: SequencerRequest, group?: string): Promise<SequencerMessage> {
    if (this.#closing !== null) return Promise.reject(new Error("Streams are closed"));
    if (this.#pending.size >= MAX_WAITING_REQUESTS) {
      return Promise.reject(
        new Error(`More than ${MAX_WAITING_REQUESTS} stream requests wait for the sequencer`),
      );
    }
    request.id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      // Posted first: a request that cannot be copied (a function inside) throws here and
      // leaves nothing waiting. Its answer cannot come before this turn ends.
      this.#port.postMessage(request);
      this.#pending.set(request.id, { resolve, reject, group });
      if (group !== undefined) this.#expectDelivery(group);
    });
  }

  #receive(message: SequencerMessage): void {
    if (message.type === "event") return this.#deliver(message.group, message.event);
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    if (message.type === "failed") {
      const error = message.name === "TypeError"
        ? new TypeError(message.error)
        : new Error(message.error);
      if (pending.group !== undefined) this.#takeDelivery(pending.group, -1);
      pending.reject(error);
    } else pending.resolve(message);
    if (this.#pending.size === 0) this.#settled?.();
  }

  #deliver(group: string, event: StreamEvent): void {
    const result = this.#layer.deliverPublished(group, event);
    this.#deliveries.get(group)?.byOffset.set(event.offset, result);
  }

  #expectDelivery(group: string): void {
    const deliveries = this.#deliveries.get(group);
    if (deliveries === undefined) this.#deliveries.set(group, { waiting: 1, byOffset: new Map() });
    else deliveries.waiting++;
  }

  // The delivery of `offset`, forgetting it and every earlier one: a later answer of this
  // group can only name a later offset.
  #takeDelivery(group: string, offset: number): SendResult | undefined {
    const deliveries = this.#deliveries.get(group);
    if (deliveries === undefined) return undefined;
    const result = deliveries.byOffset.get(offset);
    if (--deliveries.waiting === 0) this.#deliveries.delete(group);
    else {
      for (const kept of deliveries.byOffset.keys()) {
        if (kept <= offset) deliveries.byOffset.delete(kept);
      }
    }
    return result;
  }
}
