/**
 * What a cross-process layer needs from its backend (Redis pub/sub, BroadcastChannel + KV):
 * moving events between processes and counting who they reached. Everything else (local
 * membership, "publish, then deliver locally", origin ids, local counts) is the
 * backend-independent {@linkcode ProcessLayer} in `_process_layer.ts`.
 */
import type { LayerEvent } from "./layer.ts";

/** What a transport hands incoming traffic to: the layer it serves. */
export interface TransportInbox {
  /** This process's id: the start of its channel names, and the name of its own inbox. */
  readonly processId: string;
  /** A group event from any publisher; the layer skips it when `origin` is this process. */
  groupEvent(group: string, event: LayerEvent, origin: string | null): void;
  /**
   * The transport may have lost group events to this process (its subscription to `group` was
   * down and is back): its members are told (the layer's `layer.gap`), and no event is counted.
   */
  groupGap(group: string): void;
  /** An event for one of this process's channels. */
  channelEvent(channel: string, event: LayerEvent): void;
  /**
   * An event for the named channel `name`, taken for one of this process's listeners; true
   * when one took it, false when it was refused (full) or nobody here listens any more.
   */
  namedEvent(name: string, event: LayerEvent): boolean;
  /**
   * Resolves once this process's listeners of `name` are ready for another event: a transport
   * that pulls from a shared queue (Redis) takes the next one only then (back-pressure).
   */
  namedReady(name: string): Promise<void>;
}

/**
 * What a transport did with an event for a named channel: put it where one listener will
 * take it (`queued`), chose this process's own listener (`local`: the layer delivers it),
 * found nobody listening (`no-listener`) or a full queue (`full`), or the other process's
 * listener answered that it refused it (`refused`: counted and logged there); the last three
 * lose it.
 */
export type NamedSent = "queued" | "local" | "no-listener" | "full" | "refused";

/** What a transport reports for a group event it has accepted. */
export interface Published {
  /**
   * How many other processes the event was handed to. A promise when the transport has to
   * look it up (BroadcastChannel cannot count its listeners): the layer awaits it only after
   * local delivery, so local members never wait for the lookup.
   */
  remoteProcesses: number | Promise<number>;
}

/**
 * The part of a group layer that differs per backend. Implementations never deliver to local
 * channels themselves: they hand what arrives to the {@linkcode TransportInbox}, so local
 * delivery and its counting stay in one place.
 */
export interface Transport {
  /** Starts receiving: this process's own inbox, for events sent to one of its channels. */
  listen(inbox: TransportInbox): Promise<void>;
  /**
   * Starts receiving a group's events: called when the group gets its first local member.
   * Never rejects: a transport that cannot subscribe now repairs it when it reconnects.
   */
  subscribe(group: string): Promise<void>;
  /** Stops receiving a group's events: called when its last local member left. */
  unsubscribe(group: string): void;
  /**
   * Hands a group event, marked with `origin`, to every other process with members. The
   * layer delivers locally only once this resolves, so an event refused here (the broker is
   * away) reaches nobody, and the sender can report it as not sent.
   */
  publishToGroup(group: string, event: LayerEvent, origin: string): Promise<Published>;
  /**
   * Hands an event for `channel` to the process that owns it; resolves with 1 when that
   * process is listening, 0 when it is known to be gone (the event is then lost).
   */
  sendToProcess(processId: string, channel: string, event: LayerEvent): Promise<number>;
  /**
   * Starts taking the named channel's events for this process, and says so wherever senders
   * look for listeners: called when the name gets its first local listener. Resolves once
   * sends from any process can reach it.
   */
  listenNamed(name: string): Promise<void>;
  /** Stops taking them: called when the name's last local listener stopped. */
  unlistenNamed(name: string): Promise<void>;
  /**
   * Hands an event to one listener of the named channel, wherever it runs, keeping one
   * sender's events in order (`origin` is the sender's process id).
   */
  sendToNamed(name: string, event: LayerEvent, origin: string): Promise<NamedSent>;
  /** Stops receiving and releases everything. */
  close(): Promise<void>;
}
