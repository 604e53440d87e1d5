/**
 * What the connection runtime (`_connection.ts`) needs of a socket, and the limits it holds
 * each socket to.
 */

/** The part of a WebSocket the runtime uses; tests pass a fake with the same shape. */
export interface SocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
}

/** Limits that keep one client from hurting the others. */
export interface ConnectionLimits {
  maxMessageBytes: number;
  rateLimit: { perSecond: number; burst: number };
  /** Tasks (frames and events) waiting for this consumer's hooks. */
  channelCapacity: number;
  /** Unsent bytes above which events to this socket are dropped. */
  maxBufferedBytes: number;
}
