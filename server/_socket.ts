/**
 * What the connection runtime (`_connection.ts`) needs of a socket, and the limits it holds
 * each socket to.
 */

/** The part of a WebSocket the runtime uses; tests pass a fake with the same shape. */
export interface SocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed, as on a WebSocket. */
  readonly readyState: number;
  /** Bytes sent but not yet on the wire: how far behind the client is. */
  readonly bufferedAmount: number;
  /** Sends a text or binary frame. */
  send(data: string | Uint8Array): void;
  /** Starts the closing handshake; `onclose` follows once it is done. */
  close(code?: number, reason?: string): void;
  /** Called once the handshake has completed. */
  onopen: ((event: Event) => void) | null;
  /** Called with each frame from the client. */
  onmessage: ((event: MessageEvent) => void) | null;
  /** Called once the socket has closed, whichever end closed it. */
  onclose: ((event: CloseEvent) => void) | null;
  /** Called when the socket fails; `onclose` follows. */
  onerror: ((event: Event) => void) | null;
}

/** Limits that keep one client from hurting the others. */
export interface ConnectionLimits {
  /** Largest frame accepted from the client; a larger one closes the socket with 1009. */
  maxMessageBytes: number;
  /** Frames per second a client may send on average, and how many at once (the bucket). */
  rateLimit: { perSecond: number; burst: number };
  /** Tasks (frames and events) waiting for this consumer's hooks. */
  channelCapacity: number;
  /** Unsent bytes above which events to this socket are dropped. */
  maxBufferedBytes: number;
  /**
   * Seconds a socket whose events were dropped may take in nothing before it is closed with
   * 1013 (default 30): its client is gone without a word, and Deno's pings wait behind what
   * is unsent, so they would never tell.
   */
  stalledReaderSeconds?: number;
}
