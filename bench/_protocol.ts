/**
 * What the bench orchestrator asks of the load generator process, one JSON line each way.
 * A new kind of load (a presence storm, say) is a new request type here and a handler in
 * `load_generator.ts`; the orchestrator and the existing scenarios stay as they are.
 */
import type { LatencySummary } from "./_histogram.ts";

/** Opens `perRoom` clients in each room, into the named set. */
export interface ConnectRequest {
  op: "connect";
  set: string;
  port: number;
  rooms: string[];
  perRoom: number;
  /** `read`: normal clients; `stall`: complete the handshake, then never read. */
  mode: "read" | "stall";
  /** Path with `{room}` standing for the URL-encoded room name. */
  pathTemplate: string;
  /** Handshakes in flight at once. */
  concurrency?: number;
  /**
   * Every n-th reading client of a room (the 1st, the n+1-th...) reads each frame at once and
   * times it; the others read in batches, once per tick, which costs the generator far less
   * CPU, and only count and check what they get. Default 10; 1 times every client.
   */
  timedEvery?: number;
}

/** How a connect went. */
export interface ConnectResult {
  connected: number;
  failed: number;
  firstError: string | null;
  seconds: number;
}

/**
 * Sends `rate` chat messages per second in total for `durationMs`, spread round-robin over
 * the first `sendersPerRoom` clients of each room of `set`, then waits for delivery.
 */
export interface TrafficRequest {
  op: "traffic";
  set: string;
  sendersPerRoom: number;
  rate: number;
  durationMs: number;
  /** Length of each message's text (at least the marker's ~40 characters). */
  messageLength: number;
  /** Longest wait after the last send for the last deliveries. */
  drainMs: number;
}

/** What the receivers saw. */
export interface TrafficResult {
  /** Messages sent; fewer than planned when the server closed senders. */
  sent: number;
  /** Messages the rate and duration called for. */
  planned: number;
  /** Deliveries due: messages sent to a room times its reading members. */
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** Messages that reached a member of another room. */
  misrouted: number;
  /** `{"type": "error"}` frames received. */
  errorFrames: number;
  /** Clients of the set the server closed during the run. */
  closedByServer: number;
  /** Those clients by the close code the server sent (0: it sent none). */
  closeCodes: Record<string, number>;
  latency: LatencySummary;
  /** Seconds sending took (the planned duration when the generator kept up). */
  sendSeconds: number;
  /** Seconds from the first send until the last delivery (or the drain timeout). */
  activeSeconds: number;
  /** Largest number of frames waiting to be written by one sender: the server not reading. */
  maxSendBacklog: number;
}

/** Closes every client of a set. */
export interface CloseRequest {
  op: "close";
  set: string;
}

/** Any request. */
export type GeneratorRequest = ConnectRequest | TrafficRequest | CloseRequest;
