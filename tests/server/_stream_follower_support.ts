/** The stream follower tests' shared parts: a notes app, its sockets, streams the test controls. */
import { assert } from "@std/assert";
import { Communicator, type TestServices } from "../../testing.ts";
import {
  type Consumer,
  type GroupStreams,
  InMemoryLayer,
  type LayerEvent,
  MemoryStreams,
  type StreamEvent,
  StreamFollowing,
  type StreamFollowingOptions,
  type StreamRead,
} from "../../mod.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";

/** A frame as the socket receives it. */
export type Frame = Record<string, unknown>;
/** The notes app's group. */
export const GROUP = "notes";

/** A notes app: every note is published into the group's stream; sockets follow it. */
export function notesConsumer(
  services: TestServices,
  options?: StreamFollowingOptions,
  streams: GroupStreams = services.streams,
): Consumer {
  const following = new StreamFollowing(streams, options);
  return (conn) => {
    const follower = following.follow(conn, GROUP);
    return {
      async connect() {
        await conn.groupAdd(GROUP);
        await follower.enter();
      },
      async receiveJson(value) {
        await services.streams.publish(GROUP, { type: "note", text: String(value) });
      },
      events: { note: (event) => follower.deliver(event) },
    };
  };
}

/** A socket of `consumer` at `/ws/notes/` with `query`, accepted. */
export async function open(
  consumer: Consumer,
  services: TestServices,
  query = "",
): Promise<Communicator> {
  const comm = new Communicator({ consumer, services }, `/ws/notes/${query}`);
  assert((await comm.connect()).accepted);
  return comm;
}

/** Publishes a note of each text into the group's stream. */
export async function publish(services: TestServices, ...texts: string[]): Promise<void> {
  for (const text of texts) await services.streams.publish(GROUP, { type: "note", text });
}

/** The next `count` frames `comm` receives. */
export async function frames(comm: Communicator, count: number): Promise<Frame[]> {
  const received = [];
  for (let n = 0; n < count; n++) received.push(await comm.receiveJson());
  return received;
}

/**
 * Streams the test controls: they publish where no socket listens (the test delivers their
 * events itself, in the order it wants), their reads can be held or made to fail, and their
 * state can be lost, as Redis that restarted empty loses it.
 */
export class ControlledStreams implements GroupStreams {
  #store!: DenoKvStore;
  #streams!: MemoryStreams;
  /** Reads wait for this while it is set. */
  gate: Promise<void> | null = null;
  /** Reads fail while this is set. */
  failing = false;
  /** And so many of the next reads fail. */
  failures = 0;
  reads = 0;

  static async open(retention?: { messages: number; seconds: number }) {
    const streams = new ControlledStreams();
    await streams.lose(retention);
    return streams;
  }

  async lose(retention?: { messages: number; seconds: number }): Promise<void> {
    await this.#streams?.close();
    this.#store?.close();
    this.#store = await DenoKvStore.open(":memory:");
    this.#streams = new MemoryStreams(new InMemoryLayer(), this.#store, { retention });
  }

  /** Publishes a note of each text; the events as the group's members get them, every one. */
  async publishAll(...texts: string[]): Promise<StreamEvent[]> {
    const events: StreamEvent[] = [];
    for (const text of texts) {
      const { offset, epoch } = await this.#streams.publish(GROUP, { type: "note", text });
      events.push({ type: "note", text, offset, epoch });
    }
    return events;
  }

  publish(...args: Parameters<GroupStreams["publish"]>) {
    return this.#streams.publish(...args);
  }
  since(...args: Parameters<GroupStreams["since"]>): Promise<StreamRead> {
    return this.#read(() => this.#streams.since(...args));
  }
  latest(...args: Parameters<GroupStreams["latest"]>): Promise<StreamRead> {
    return this.#read(() => this.#streams.latest(...args));
  }
  async close(): Promise<void> {
    await this.#streams.close();
    this.#store.close();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #read(read: () => Promise<StreamRead>): Promise<StreamRead> {
    this.reads++;
    await this.gate;
    if (this.failing || this.failures-- > 0) throw new Error("The store is away");
    return await read();
  }
}

/** Delivers `events` to the group's members, as the layer would. */
export async function deliver(services: TestServices, events: LayerEvent[]): Promise<void> {
  for (const event of events) await services.layer.groupSend(GROUP, event);
}
