/**
 * The connection runtime: one consumer on one socket, its hooks run one at a time in arrival
 * order, what waits to be sent bounded, its groups left on close. One class, built in steps, a
 * file each: the per-frame and per-delivery paths, with every field they read
 * (`_connection_traffic.ts`); what happens when something goes wrong there
 * (`_connection_trouble.ts`); the close and the finish (`_connection_closing.ts`); and here, the
 * whole connection and its opening: the consumer made, `connect` run, the upgraded socket wired
 * and opened (or given up on when it never opens).
 *
 * Still one object per socket, with one `#state` (bits in `_connection_flags.ts`) that every
 * step reads: split into objects, each would cost memory per idle socket and a call more per
 * message. So subclasses, whose steps, each run once per socket or once something went wrong,
 * reach the hot path's fields through protected accessors, and whose own fields come after them.
 *
 * Elsewhere: the hooks' turns, `_hook_queue.ts`; which hook a frame goes to, `_hook_calls.ts`;
 * the checks on what is sent, `_send_checks.ts`; closing the socket, `_socket_close.ts`; the log
 * lines, `_connection_log.ts`; the framework's own frames and the time limits,
 * `_connection_constants.ts`; the subprotocol `connect` accepts, `_subprotocol_choice.ts`.
 */
import type { Connection, Consumer } from "./consumer.ts";
import { CloseCode } from "./close_codes.ts";
import type { SocketLike } from "./_socket.ts";
import type { LayerEvent } from "../layers/layer.ts";
import {
  CLOSE_AT_OPEN,
  CLOSING,
  CONNECTING,
  FAILED,
  FINISHED,
  IN_CONNECT,
  NEVER_OPENED,
} from "./_connection_flags.ts";
import {
  type ConnectRefusal,
  failedConnect,
  hooksOf,
  runConnectHook,
  runDisconnectHook,
} from "./_hook_calls.ts";
import { consumerFailures, fileUnderSocket } from "./_consumer_failures.ts";
import { closedInConnect, NEVER_OPENED_REASON, OPEN_TIMEOUT_MS } from "./_connection_constants.ts";
import { type ClosingOptions, ConnectionClosing } from "./_connection_closing.ts";
import { acceptedSubprotocols, chooseSubprotocol } from "./_subprotocol_choice.ts";

export type { ConnectRefusal } from "./_hook_calls.ts";
export { acceptedSubprotocols };

/**
 * A route's re-check of what signed a socket in: `asked` is the `session.recheck` event that
 * asked for it (`RECHECK_EVENT`), `undefined` after a layer gap (events may have been lost).
 */
export type Recheck = (conn: WebSocketConnection, asked?: LayerEvent) => void | Promise<void>;

/** What a route gives each of its connections. */
export interface WebSocketConnectionOptions extends ClosingOptions {
  /**
   * Runs, in turn with the hooks, when the layer may have lost events to this socket (its
   * Redis subscription was restored), or when a `session.recheck` event asks: the route
   * re-checks what it must (the session). One function per route, not a closure per socket.
   */
  onRecheck?: Recheck;
}

/**
 * Why Deno ended a socket, by the socket, when it said so in an `error` event: a protocol error
 * (a text frame that is not UTF-8, reserved bits set, an unknown opcode) ends it with no close
 * frame, so its close reads 1006, as a network drop does, unless the log gives this.
 */
const socketErrors = new WeakMap<object, string>();

// Shared by every connection (a closure per socket is memory per socket): the socket is the
// event's target. The close event that follows does the cleanup. A connection that merely
// dropped ("Unexpected EOF", "Connection reset by peer (os error 104)") reads as the bare 1006
// it is: a phone that lost its signal is no news.
function noteSocketError(event: Event): void {
  const message = (event as ErrorEvent).message;
  if (event.target === null || typeof message !== "string" || message === "") return;
  if (message === "Unexpected EOF" || message.includes("(os error")) return;
  socketErrors.set(event.target, message);
}

/**
 * Runs one consumer on one socket: limits incoming frames, runs hooks one at a time in
 * arrival order, bounds what waits to be sent, and cleans up groups on close.
 */
export class WebSocketConnection extends ConnectionClosing {
  #onRecheck: Recheck | undefined;

  constructor(consumer: Consumer, options: WebSocketConnectionOptions) {
    super(options);
    this.#onRecheck = options.onRecheck;
    // Last, once every step's fields are made: the consumer gets the connection now, and may
    // call any of it at once.
    this.hooks = hooksOf(consumer, this);
  }

  /**
   * Runs the `connect` hook; resolves `null` when the socket is accepted, else how the handshake
   * must be refused: 403 when the consumer said no (`false`, or a {@linkcode ProtocolError}
   * with its message), 500 (503 when a backend was away) when the hook failed, or a call it
   * did not await failed while it ran (the error is logged).
   */
  async runConnect(): Promise<ConnectRefusal | null> {
    // `connect` is a hook like any other: events that arrive meanwhile wait for it to finish.
    this.queue.begin();
    this.state |= IN_CONNECT;
    const refusal = await runConnectHook(this.hooks, this.scope.path);
    this.state &= ~IN_CONNECT;
    if (refusal === null && (this.state & CLOSING) !== 0) {
      // Channels' `self.close()` in `connect` (or a close event meanwhile): the handshake is
      // refused. `connect` itself finished, so what it did is undone by `disconnect`, as
      // Channels runs `websocket_disconnect` after a rejected handshake.
      await this.release();
      await runDisconnectHook(this.hooks, this.closeCode, this.scope.path);
      this.markDone();
      // Not the consumer's refusal but its failure (`failConsumer`, logged): a call it did not await
      // failed while `connect` ran, and fails `connect` as a throw would, error included.
      if ((this.state & FAILED) !== 0) return failedConnect(consumerFailures.get(this));
      return { status: 403, reason: closedInConnect(this.closeReason), code: this.closeCode };
    }
    if (refusal === null) {
      this.queue.continueAfter(undefined); // what waited runs now, in order
      return null;
    }
    await this.release();
    this.markDone();
    // Said no (`false`, a `ProtocolError`) after a call it did not await failed: the failure
    // wins, as it does over a close in `connect`, so the error is not lost.
    if (refusal.status === 403 && (this.state & FAILED) !== 0) {
      return failedConnect(consumerFailures.get(this));
    }
    return refusal;
  }

  /** What reports of `conn` for a communicator are filed under (see `reportKey`). */
  static reportKeyOf(conn: Connection): object {
    return conn instanceof WebSocketConnection ? conn.reportKey : conn;
  }

  /** Wires an upgraded socket to this connection. */
  attach(socket: SocketLike): void {
    this.socket = socket;
    fileUnderSocket(this, socket);
    if (this.batch !== null) this.batch.socket = socket;
    socket.onopen = () => this.#opened();
    this.takeFramesFrom(socket);
    // Deno says 0 when no close frame came: 1006, as browsers and Channels say.
    socket.onclose = (event) =>
      void this.socketClosed(
        event.code === 0 ? CloseCode.ABNORMAL_CLOSURE : event.code,
        event.reason || (event.code === 0 ? socketErrors.get(socket) ?? "" : ""),
      );
    socket.onerror = noteSocketError;
    // A client that left while `connect` ran gets a socket from Deno that never opens and
    // never closes: no event would ever end it (its groups, presence, cap place). Given up on
    // if it has not opened in time; `#opened` clears this.
    this.closeTimer = setTimeout(() => this.#neverOpened(), OPEN_TIMEOUT_MS);
    if ((this.state & CLOSING) !== 0) {
      // Closed after `connect` accepted the socket, before its upgrade (a log-out, say).
      this.state &= ~CLOSING;
      this.close(this.closeCode, this.closeReason);
    }
  }

  acceptSubprotocol(name: string): void {
    const answered = this.socket !== null || (this.state & (FINISHED | CLOSING)) !== 0;
    chooseSubprotocol(this, name, answered);
  }

  #neverOpened(): void {
    const socket = this.socket;
    if (socket === null || socket.readyState !== CONNECTING) return;
    try {
      socket.close(CloseCode.GOING_AWAY);
    } catch {
      // the socket is gone already
    }
    this.state |= NEVER_OPENED;
    this.meter.neverOpened++;
    // As a connection lost without a close frame reads, with why in the log line.
    void this.socketClosed(1006, NEVER_OPENED_REASON);
  }

  /**
   * True when the socket was upgraded but never opened: its client left during the upgrade,
   * and Deno keeps its descriptor (see `OPEN_TIMEOUT_MS`).
   */
  get neverOpened(): boolean {
    return (this.state & NEVER_OPENED) !== 0;
  }

  #opened(): void {
    clearTimeout(this.closeTimer);
    const queue = this.beforeOpen;
    this.beforeOpen = null;
    // A close asked for before the open goes now, after the frames sent before it.
    const closeAtOpen = (this.state & CLOSE_AT_OPEN) !== 0;
    if (closeAtOpen) this.state &= ~(CLOSING | CLOSE_AT_OPEN);
    try {
      for (const frame of queue?.frames ?? []) {
        if ((this.state & (FINISHED | CLOSING)) !== 0) break;
        // Written as they were queued: they were counted against the bound then, not again.
        if (typeof frame === "string" || frame instanceof Uint8Array) this.batch?.flush();
        this.writeQueued(frame);
      }
    } catch (error) {
      // An event handler must not throw: that would end the process, not this socket.
      this.failConsumer(error);
    }
    this.reportDroppedBeforeOpen(queue);
    if (closeAtOpen) this.close(this.closeCode, this.closeReason);
  }

  // The route's re-check after a layer gap or when asked (`_connection_trouble.ts`'s `layerGap`
  // and `recheckAsked`).
  protected routeRecheck(asked?: LayerEvent): void | Promise<void> {
    return this.#onRecheck?.(this, asked);
  }
}
