import type { SocketLike } from "../server/_socket.ts";

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** What the client end of a {@linkcode FakeSocket} hears. */
export interface FakeSocketPeer {
  /** A frame the server sent. */
  frame(data: string | Uint8Array): void;
  /** The socket closed (by either end). */
  closed(code: number, reason: string): void;
}

/**
 * The server end of an in-process WebSocket: the runtime drives it like a real socket, the
 * test drives the client end through {@linkcode FakeSocket.open}, `deliver` and `hangUp`.
 * Client frames and closes are dispatched as tasks, like a network's, so a test that sends
 * then disconnects sees them arrive in that order.
 */
export class FakeSocket implements SocketLike {
  /** Connecting until the test opens it, then open, closing, closed (0 to 3). */
  readyState: number = CONNECTING;
  /** Unsent bytes; a test raises it to play a client that stopped reading. */
  bufferedAmount = 0;
  /** Set by the runtime; called when the test opens the socket. */
  onopen: ((event: Event) => void) | null = null;
  /** Set by the runtime; called with each frame the test delivers. */
  onmessage: ((event: MessageEvent) => void) | null = null;
  /** Set by the runtime; called once either end has closed. */
  onclose: ((event: CloseEvent) => void) | null = null;
  /** Set by the runtime; this fake never fails, so it is never called. */
  onerror: ((event: Event) => void) | null = null;
  #peer: FakeSocketPeer;

  /** `peer` is the client end: it hears the frames and the close. */
  constructor(peer: FakeSocketPeer) {
    this.#peer = peer;
  }

  /** Hands a frame to the client end; throws before open, like a WebSocket, and drops it once closing. */
  send(data: string | Uint8Array): void {
    if (this.readyState === CONNECTING) {
      throw new DOMException("WebSocket is not open", "InvalidStateError");
    }
    // Copied, as a real socket sends what the bytes are now: the sender may reuse its buffer.
    if (this.readyState === OPEN) this.#peer.frame(typeof data === "string" ? data : data.slice());
  }

  /** Closes from the server end; the client answers in a microtask, then `onclose` runs. */
  close(code = 1000, reason = ""): void {
    // As Deno's socket does: a reason a close frame cannot carry throws (a `SyntaxError`).
    if (new TextEncoder().encode(reason).length > 123) {
      throw new SyntaxError("The close reason may not be longer than 123 bytes");
    }
    if (this.readyState >= CLOSING) return;
    this.readyState = CLOSING;
    // The client answers the close frame, and only then does the server see `close`.
    queueMicrotask(() => this.#finish(code, reason));
  }

  /** Completes the handshake; nothing once either end closed it (a client that left meanwhile). */
  open(): void {
    if (this.readyState !== CONNECTING) return;
    this.readyState = OPEN;
    this.onopen?.(new Event("open"));
  }

  /** A frame from the client. Frames after the close are lost, as on a network. */
  deliver(data: string | ArrayBuffer): void {
    queueMicrotask(() => {
      if (this.readyState !== OPEN) return;
      this.onmessage?.(new MessageEvent("message", { data }));
    });
  }

  /** The client closes with `code`. */
  hangUp(code: number, reason = ""): void {
    queueMicrotask(() => {
      if (this.readyState === CLOSED) return;
      this.#finish(code, reason);
    });
  }

  #finish(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#peer.closed(code, reason);
    this.onclose?.(new CloseEvent("close", { code, reason, wasClean: true }));
  }
}
