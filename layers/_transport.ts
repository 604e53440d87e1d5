/**
 * What a cross-process layer needs from its backend (Redis pub/sub, BroadcastChannel + KV):
 * moving events between processes and keeping the shared membership registry. Everything
 * else (local membership, "publish, then deliver locally", origin ids, counting) is the
 * backend-independent {@linkcode ProcessLayer} in `_process_layer.ts`.
 */
import type { LayerEvent } from "./layer.ts";

/** What a transport hands incoming traffic to: the layer it serves. */
export interface TransportInbox {
  /** This process's id: the start of its channel names, and the name of its own inbox. */
  readonly processId: string;
  /** A group event from any publisher; the layer skips it when `origin` is this process. */
  groupEvent(group: string, event: LayerEvent, origin: string | null): void;
  /** An event for one of this process's channels. */
  channelEvent(channel: string, event: LayerEvent): void;
  /** The registry may have lost this process's memberships (a reconnect): write them again. */
  membershipLost(): void;
}

/** Read access to this process's groups, for writing them to (or removing them from) a registry. */
export interface Memberships {
  /** Groups that have at least one member in this process. */
  groups(): string[];
  /** The members of `group` in this process. */
  members(group: string): string[];
}

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
  /** Hands an event for `channel` to the process that owns it; resolves with how many heard. */
  sendToProcess(processId: string, channel: string, event: LayerEvent): Promise<number>;
  /** Records one membership in the shared registry, to expire unless refreshed. */
  remember(group: string, channel: string): Promise<void>;
  /** Removes one membership from the registry (best effort: it expires anyway). */
  forget(group: string, channel: string): Promise<void>;
  /** Writes every local membership again with a fresh expiry: the layer's heartbeat. */
  refresh(memberships: Memberships): Promise<void>;
  /** The channels that are members of `group` in any process, by the registry. */
  members(group: string): Promise<string[]>;
  /** Removes `memberships` from the registry (best effort), then releases everything. */
  close(memberships: Memberships): Promise<void>;
}
