/**
 * The stream sequencer of `--workers N`: the parent of the Workers gives every offset, keeps
 * the windows, and writes them to Deno KV in batches, exactly as one process does
 * (`MemoryStreams`). Each Worker reaches it through a `MessagePort` (`SequencedStreams` on the
 * Worker's side).
 *
 * Why not each Worker committing its own offsets to the KV file they share (`KvStreams`, which
 * Deno Deploy's isolates still use, having no parent): a commit costs 0.4 to 0.9 ms of CPU, so
 * at a few hundred messages a second the Workers spent more on agreeing than on delivering, and
 * two Workers publishing to one room collided. One sequencer cannot collide with itself, and
 * its events reach every Worker in offset order.
 *
 * A publish is answered once its event has gone to every Worker; it is written to the store
 * within the streams' write delay (2 s), and all of it when the sequencer closes, after the
 * Workers have stopped. A crash before that loses what was not written, and the next run gives
 * those streams a new epoch (see `MemoryStreams`).
 */
import type { SendResult } from "../layer.ts";
import type { Store } from "../../storage/store.ts";
import { log } from "../../telemetry/log.ts";
import type { StreamEvent, StreamRetention } from "./contract.ts";
import { MemoryStreams } from "./memory.ts";
import type { SequencerMessage, SequencerRequest } from "./_sequencer_wire.ts";

/** How the sequencer keeps its streams. */
export interface StreamSequencerOptions {
  /** Retention of groups whose publishers name none (default 1,000 messages or 10 minutes). */
  retention?: StreamRetention;
  /** Longest an event waits before it is written to the store (default 2 s). */
  writeDelayMs?: number;
  /** Characters of JSON every stream together may keep (see `MemoryStreamsOptions`). */
  memoryBudget?: number;
  /** How long what is written to the store outlives its write (see `MemoryStreamsOptions`). */
  idleExpiryMs?: number;
}

/** Gives offsets for the Workers connected to it; see the module doc. */
export class StreamSequencer {
  #ports: MessagePort[] = [];
  #streams: MemoryStreams;
  #closing: Promise<void> | null = null;

  /** A sequencer whose streams are written to `store`. */
  constructor(store: Store, options: StreamSequencerOptions = {}) {
    this.#streams = new MemoryStreams(
      {
        groupSend: (group, event) => Promise.resolve(this.#fanOut(group, event)),
        groupSendNow: (group, event) => this.#fanOut(group, event),
      },
      store,
      options,
    );
  }

  /** A port for one more Worker: hand it to the Worker (transferred) for `SequencedStreams`. */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = (message: MessageEvent<SequencerRequest>) =>
      this.#answer(port1, message.data);
    this.#ports.push(port1);
    return port2;
  }

  /** Writes every stream and closes the ports; call once the Workers have stopped. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      try {
        await this.#streams.close();
      } finally {
        for (const port of this.#ports) port.close();
      }
    })();
  }

  // Every Worker gets the event, its publisher's included; none delivers on its own.
  #fanOut(group: string, event: { type: string }): SendResult {
    const message: SequencerMessage = { type: "event", group, event: event as StreamEvent };
    for (const port of this.#ports) port.postMessage(message);
    return { delivered: 0, dropped: 0, remoteProcesses: this.#ports.length };
  }

  async #answer(port: MessagePort, request: SequencerRequest): Promise<void> {
    const { id } = request;
    let answer: SequencerMessage;
    try {
      if (this.#closing !== null) throw new Error("The stream sequencer is closed");
      if (request.type === "publish") {
        const options = request.retention === undefined ? undefined : {
          retention: request.retention,
        };
        const published = await this.#streams.publish(request.group, request.event, options);
        answer = {
          type: "published",
          id,
          offset: published.offset,
          epoch: published.epoch,
          otherWorkers: this.#ports.length - 1,
        };
      } else if (request.type === "since") {
        answer = {
          type: "read",
          id,
          read: await this.#streams.since(request.group, request.position, {
            maxBytes: request.maxBytes,
            pageBytes: request.pageBytes,
          }),
        };
      } else {
        answer = {
          type: "read",
          id,
          read: await this.#streams.latest(request.group, request.count),
        };
      }
    } catch (error) {
      const { name, message } = error as Error;
      if (name !== "TypeError") log.warn(`Stream sequencer: a ${request.type} failed`, error);
      answer = { type: "failed", id, name, error: message };
    }
    port.postMessage(answer);
  }
}
