/**
 * How a connection (`_connection.ts`) closes and finishes: `close` (its frame sent a macrotask
 * later, or once the socket opens), then, once the socket has closed, what came before the
 * close handled, the channel closed (every group it joined left), the consumer's `disconnect`
 * run, and the listeners told. The groups the consumer joins are here too: this is where they
 * are left.
 *
 * Separate from the opening steps and from the hot path (`_connection_traffic.ts`) because it
 * runs once per socket: it reaches the hot path's fields through their protected accessors, and
 * keeps its own (the close's code, reason and timer, the listeners) after theirs.
 */
import type { GroupLayer, LayerEvent, SendResult } from "../layers/layer.ts";
import { CloseCode, closeReason } from "./close_codes.ts";
import type { SocketLike } from "./_socket.ts";
import { log } from "../telemetry/log.ts";
import {
  CLOSE_AT_OPEN,
  CLOSE_QUEUED,
  CLOSE_SENT,
  CLOSING,
  CONNECTING,
  DONE,
  DRAIN_WATCHED,
  FINISHED,
  NEVER_OPENED,
  OPEN,
} from "./_connection_flags.ts";
import { runDisconnectHook } from "./_hook_calls.ts";
import { checkCloseCode } from "./_send_checks.ts";
import type { BeforeOpenQueue } from "./_before_open.ts";
import { cancelPendingClose, closeOnNextTurn, detachHandlers } from "./_socket_close.ts";
import { stopDrainWatch } from "./_drain_watch.ts";
import { failingItsConnection } from "./_unawaited.ts";
import { logDisconnect, warnDroppedBeforeOpen, warnHookStillRunning } from "./_connection_log.ts";
import { CLOSE_TIMEOUT_MS, HOOKS_AFTER_CLOSE_MS } from "./_connection_constants.ts";
import type { TrafficOptions } from "./_connection_traffic.ts";
import { ConnectionTrouble } from "./_connection_trouble.ts";

/** What the closing steps read of a connection's options (`WebSocketConnectionOptions`). */
export interface ClosingOptions extends TrafficOptions {
  /** Told how many frames were dropped before the socket opened, once it opens or closes. */
  onDroppedBeforeOpen?: (frames: number) => void;
  /**
   * Told once the connection finished, before the `onFinished` listeners, with its socket
   * (`null` if it never had one): one function per route, not a closure per socket.
   */
  onFinished?: (socket: SocketLike | null, neverOpened: boolean) => void;
}

/** A connection's close and finish; see the module's doc. */
export abstract class ConnectionClosing extends ConnectionTrouble {
  /** The code the server closed with (0 until it does): a client may answer with another. */
  #closeCode = 0;
  /** The reason the server closed with (as sent), or one asked for before the socket existed. */
  #closeReason = "";
  /** The wait for the socket to open (`attach`), then for the client's close frame (`close`). */
  #closeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** One listener on its own (no array for the usual one), more in an array. */
  #whenDone: (() => void) | (() => void)[] | null = null;
  #onDroppedBeforeOpen: ((frames: number) => void) | undefined;
  #onFinished: ((socket: SocketLike | null, neverOpened: boolean) => void) | undefined;
  /** Read here, not through an accessor: a consumer's `groupSend` may run once per frame. */
  #layer: GroupLayer;

  constructor(options: ClosingOptions) {
    super(options);
    this.#layer = options.layer;
    this.#onDroppedBeforeOpen = options.onDroppedBeforeOpen;
    this.#onFinished = options.onFinished;
  }

  /** Calls `listener` once the socket has closed and the consumer's `disconnect` has run. */
  onFinished(listener: () => void): void {
    const waiting = this.#whenDone;
    if ((this.state & DONE) !== 0) listener();
    else if (waiting === null) this.#whenDone = listener;
    // An array literal is made to size; one grown by `push` holds 16 more slots per socket.
    else if (typeof waiting === "function") this.#whenDone = [waiting, listener];
    else waiting.push(listener);
  }

  /** Resolves when the socket has closed and the consumer's `disconnect` has run. */
  get finished(): Promise<void> {
    // Made on demand: a promise per socket would be memory per idle socket.
    return new Promise((resolve) => this.onFinished(resolve));
  }

  close(code: number = CloseCode.NORMAL, reason = ""): void {
    checkCloseCode(code);
    const socket = this.socket;
    if ((this.state & (FINISHED | CLOSING)) !== 0) return;
    if (socket === null) {
      // No socket yet: in `connect` this refuses the handshake (`runConnect`); after it, the
      // socket closes as soon as it is attached (`attach`).
      this.state |= CLOSING;
      this.#closeCode = code;
      this.#closeReason = reason;
      return;
    }
    if (socket.readyState === CONNECTING) {
      // Deno ignores a close of a server socket that has not opened yet: it opens all the same,
      // and no close frame ever goes (a drain's 1012 would never reach a handshake under way).
      // So the close waits for the open (`_connection.ts`), after what was sent before it.
      this.state |= CLOSING | CLOSE_AT_OPEN;
      this.#closeCode = code;
      this.#closeReason = reason;
      return;
    }
    // What was sent before the close goes before it.
    this.batch?.flush();
    if (socket.readyState === OPEN) {
      // The socket closes a macrotask later (see `closeOnNextTurn`), after a refused frame once
      // the client stopped sending; nothing is sent meanwhile.
      this.state |= CLOSING;
      this.#closeCode = code;
      this.#closeReason = closeReason(reason); // as sent: at most 123 bytes
      const refused = (this.state & CLOSE_QUEUED) !== 0;
      const sent = () => void (this.state |= CLOSE_SENT);
      closeOnNextTurn(
        socket,
        { code, reason: this.#closeReason, scope: this.scope, sent },
        refused,
      );
      // A client that never reads never answers the close frame either: stop waiting for it,
      // so its groups and channel are released now rather than when TCP gives up.
      clearTimeout(this.#closeTimer); // the wait for the open, if it still runs
      this.#closeTimer = setTimeout(() => void this.socketClosed(code), CLOSE_TIMEOUT_MS);
    }
  }

  // Through `Promise.try`: a layer that throws rather than rejects still gives the consumer a
  // rejected promise, as the contract says, so its `.catch` sees the failure. One that nothing
  // awaits fails this connection, not the process (`_unawaited.ts`).
  groupAdd(group: string): Promise<void> {
    // The layer remembers the channel's groups: closing the channel leaves them all.
    const adding = Promise.try(() => this.#layer.groupAdd(group, this.channelName));
    return failingItsConnection(adding, this, "groupAdd", ConnectionClosing.fail);
  }

  groupDiscard(group: string): Promise<void> {
    const leaving = Promise.try(() => this.#layer.groupDiscard(group, this.channelName));
    return failingItsConnection(leaving, this, "groupDiscard", ConnectionClosing.fail);
  }

  groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    const sending = Promise.try(() => this.#layer.groupSend(group, event));
    return failingItsConnection(sending, this, "groupSend", ConnectionClosing.fail);
  }

  channelSend(channel: string, event: LayerEvent): Promise<SendResult> {
    const sending = Promise.try(() => this.#layer.send(channel, event));
    return failingItsConnection(sending, this, "channelSend", ConnectionClosing.fail);
  }

  // Never silent: what `connect` sent beyond the queue is counted and logged like any drop.
  protected reportDroppedBeforeOpen(queue: BeforeOpenQueue | null): void {
    if (queue === null || queue.dropped === 0) return;
    this.#onDroppedBeforeOpen?.(queue.dropped);
    warnDroppedBeforeOpen(this.scope, queue.dropped, queue.bound);
  }

  /**
   * Ends a connection whose socket never opened (the handshake failed after `connect` ran):
   * its groups are left and its consumer's `disconnect(code)` runs, as on a close.
   */
  abort(code: number): Promise<void> {
    return this.socketClosed(code);
  }

  // `reason`: the close frame's, or Deno's own when it gave up (a ping never answered).
  protected async socketClosed(code: number, reason = ""): Promise<void> {
    clearTimeout(this.#closeTimer);
    if ((this.state & FINISHED) !== 0) return;
    this.state |= FINISHED;
    // The server's close, when it asked for one; it ended the socket only once its frame went
    // (a client that closed first, its close frame crossing the server's decision, did).
    const asked = (this.state & CLOSING) !== 0;
    const byServer = (this.state & CLOSE_SENT) !== 0;
    // Counted, as logged, under the server's code once its close frame went: a client that
    // answers 1000, or drops the connection, must not hide a kick (1008, 1009, 1013). A kick
    // whose frame never went (the client's close came first) is counted as the client's close.
    // It was counted open once attached.
    if (this.socket !== null) this.meter.closed(byServer ? this.#closeCode : code);
    this.batch?.discard();
    if (this.socket !== null) {
      detachHandlers(this.socket);
      cancelPendingClose(this.socket); // the client's close came first
    }
    if ((this.state & DRAIN_WATCHED) !== 0) stopDrainWatch(this);
    this.reportDroppedBeforeOpen(this.beforeOpen);
    this.beforeOpen = null;
    logDisconnect(
      this.scope,
      code,
      asked ? { code: this.#closeCode, reason: this.#closeReason, sent: byServer } : undefined,
      reason,
    );
    await this.#handledBeforeClose();
    await this.release();
    const failure = await runDisconnectHook(this.hooks, code, this.scope.path);
    if (failure !== undefined) this.failedLate(failure);
    this.markDone();
  }

  // What reached the socket before it closed is handled first, in order, and the hook that runs
  // finishes, as Channels handles what came before `websocket.disconnect`: a message sent just
  // before a tab closed is not lost, and `disconnect` never runs in the middle of another hook.
  // Groups are left after (a hook may still join one). A hook that still runs
  // `HOOKS_AFTER_CLOSE_MS` after the close is not waited for: what waits behind it is dropped.
  #handledBeforeClose(): Promise<void> {
    return this.queue.finish(HOOKS_AFTER_CLOSE_MS, () => {
      warnHookStillRunning(this.scope, HOOKS_AFTER_CLOSE_MS);
    });
  }

  protected markDone(): void {
    this.state |= DONE;
    this.#onFinished?.(this.socket, (this.state & NEVER_OPENED) !== 0);
    const listeners = this.#whenDone;
    this.#whenDone = null;
    if (typeof listeners === "function") listeners();
    else for (const listener of listeners ?? []) listener();
  }

  // Closing the channel leaves every group it joined (the layer's contract), before the
  // consumer's `disconnect` runs.
  protected async release(): Promise<void> {
    this.state |= FINISHED;
    try {
      // Awaited inside `try`: a layer that throws rather than rejects must not end the process.
      await this.#layer.closeChannel(this.channelName);
    } catch (error) {
      log.warn(`Could not close channel ${this.channelName} and leave its groups`, error);
    }
  }

  // For the opening steps (`_connection.ts`): the close asked for before the socket existed or
  // opened, and the timer that gives up on a socket that never opens.
  protected get closeCode(): number {
    return this.#closeCode;
  }
  protected get closeReason(): string {
    return this.#closeReason;
  }
  protected get closeTimer(): ReturnType<typeof setTimeout> | undefined {
    return this.#closeTimer;
  }
  protected set closeTimer(timer: ReturnType<typeof setTimeout>) {
    this.#closeTimer = timer;
  }
}
