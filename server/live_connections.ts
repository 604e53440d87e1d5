/**
 * The live sockets of one app: tracked from their upgrade until their consumer's `disconnect`
 * ran, so a shutdown, a drain or a log-out can reach them all, and counted for the metrics.
 */
import type { SocketLike } from "./_socket.ts";
import { closeSpread, type DrainClock, settlesWithin } from "./drain.ts";

/** What {@linkcode LiveConnections} needs of a connection: a way to close it, and its end. */
export interface TrackedConnection {
  /** Closes the socket with `code`; the connection then runs its `disconnect` hook. */
  close(code: number, reason: string): void;
  /** Resolves once the connection has run its `disconnect` hook. */
  readonly finished: Promise<void>;
  /** Calls `listener` once the connection has finished (at once if it already has). */
  onFinished(listener: () => void): void;
}

/** How {@linkcode LiveConnections.closeAll} closes: at once (default) or spread (a drain). */
export interface CloseAllOptions {
  /** Spread the closes evenly over this many ms (see `closeSpread`); 0 or omitted: at once. */
  windowMs?: number;
  /**
   * After the last close, wait at most this long for the `disconnect` hooks (a client that
   * never answers its close frame would hold a drain up); omitted: until they all ran.
   */
  waitMs?: number;
  /** The timers (tests pass a fake clock). */
  clock?: DrainClock;
}

/** The live sockets of one app, so shutdown and logout can reach them. */
export class LiveConnections {
  #all = new Map<SocketLike, TrackedConnection>();
  /** Set once `closeAll` started: a socket that opens afterwards is closed at once. */
  #closingWith: { code: number; reason: string } | null = null;

  #droppedBeforeOpen = 0;

  /** Frames dropped because more were sent before a socket opened than its queue holds. */
  get droppedBeforeOpen(): number {
    return this.#droppedBeforeOpen;
  }

  /** Counts frames a connection dropped before its socket opened. */
  countDroppedBeforeOpen(frames: number): void {
    this.#droppedBeforeOpen += frames;
  }

  /**
   * Sockets upgraded whose client left before they opened: Deno keeps each one's descriptor
   * until the process exits, so the listener's graceful stop can never finish (`serveApp` cuts
   * it at once then, rather than wait for it).
   */
  heldByDeno = 0;

  /** How many sockets are open. */
  get size(): number {
    return this.#all.size;
  }

  /** Tracks the connection on `socket` until it finishes. */
  track(connection: TrackedConnection, socket: SocketLike): void {
    this.#all.set(socket, connection);
    connection.onFinished(() => this.#all.delete(socket));
    this.#closeIfClosing(connection);
  }

  /**
   * Tracks the connection on `socket` until {@linkcode forget} is called for it, which its
   * owner does once it finished: one function per route where `track` holds a closure per
   * socket (memory per idle socket, times thousands).
   */
  add(connection: TrackedConnection, socket: SocketLike): void {
    this.#all.set(socket, connection);
    this.#closeIfClosing(connection);
  }

  /** Stops tracking the connection on `socket` (see {@linkcode add}). */
  forget(socket: SocketLike): void {
    this.#all.delete(socket);
  }

  #closeIfClosing(connection: TrackedConnection): void {
    // A handshake that was under way when the server began to close is not left behind.
    if (this.#closingWith) connection.close(this.#closingWith.code, this.#closingWith.reason);
  }

  /** Resolves once the connection on `socket` has run its `disconnect` (tests wait on it). */
  finished(socket: SocketLike): Promise<void> {
    return this.#all.get(socket)?.finished ?? Promise.resolve();
  }

  /**
   * Closes every socket with `code` (spread over `options.windowMs` for a drain) and waits for
   * their `disconnect` hooks; resolves with how many had not finished when it stopped waiting.
   * A socket tracked from now on is closed at once with the same code.
   */
  async closeAll(code: number, reason: string, options: CloseAllOptions = {}): Promise<number> {
    this.#closingWith = { code, reason };
    const { windowMs = 0, waitMs, clock } = options;
    await closeSpread([...this.#all.values()], (connection) => connection.close(code, reason), {
      windowMs,
      clock,
    });
    const finishing = Promise.all([...this.#all.values()].map((connection) => connection.finished));
    if (waitMs === undefined) await finishing;
    else await settlesWithin(finishing, waitMs, clock);
    return this.#all.size;
  }
}
