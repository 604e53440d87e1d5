/**
 * The connection runtime: one consumer on one socket, its hooks run one at a time in arrival
 * order, what waits to be sent bounded, its groups left on close. The hooks' turns are
 * `_hook_queue.ts`; which hook a frame goes to, `_hook_calls.ts`; the checks on what is sent,
 * `_send_checks.ts`; closing the socket, `_socket_close.ts`; the log lines,
 * `_connection_log.ts`; the `#state` bits, `_connection_flags.ts`; the framework's own frames
 * and the time limits, `_connection_constants.ts`.
 *
 * What is left here is one state machine (the `#state` bits) that every part reads: opening,
 * delivering, sending and closing. The hook queue is an object of its own because it needs none
 * of those bits (it keeps its own "running"), at a few dozen bytes per socket and one call more
 * per delivery (measured: no change beyond the bench's spread). The rest stays one class, with
 * private fields: split, each part would need the bits of the others.
 */
import type { Connection, Consumer, ConsumerHooks, Scope } from "./consumer.ts";
import { type GroupLayer, LAYER_GAP, type LayerEvent, type SendResult } from "../layers/layer.ts";
import {
  CloseCode,
  closeReason,
  errorFrame,
  frameRef,
  isSendableCloseCode,
  ProtocolError,
} from "./close_codes.ts";
import { asOneLine, FrameBatch } from "./_frame_batch.ts";
import { FrameGate, type IncomingFrame } from "./_frame_gate.ts";
import type { ConnectionLimits, SocketLike } from "./_socket.ts";
import { log } from "../telemetry/log.ts";
import { RouteMeter } from "./server_metrics.ts";
import {
  CLOSE_AT_OPEN,
  CLOSE_QUEUED,
  CLOSE_SENT,
  CLOSING,
  CONGESTED,
  CONNECTING,
  DELIVERING,
  DONE,
  DRAIN_WATCHED,
  FAILED,
  FINISHED,
  GAP_PENDING,
  IN_CONNECT,
  NEVER_OPENED,
  OPEN,
  ROOM_SEEN,
} from "./_connection_flags.ts";
import { HookQueue } from "./_hook_queue.ts";
import {
  type ConnectRefusal,
  dispatchFrame,
  type EventHandler,
  failedConnect,
  hooksOf,
  ownEventHandler,
  runConnectHook,
  runDisconnectHook,
} from "./_hook_calls.ts";
import { checkCloseCode, checkFrame, jsonFrame } from "./_send_checks.ts";
import { BEFORE_OPEN_FACTOR, BeforeOpenQueue, type WaitingJson } from "./_before_open.ts";
import { cancelPendingClose, closeOnNextTurn, detachHandlers } from "./_socket_close.ts";
import { consumerFailures, lateFailures, unhandledEvents } from "./_consumer_failures.ts";
import { stopDrainWatch, watchDrain } from "./_drain_watch.ts";
import { failingItsConnection } from "./_unawaited.ts";
import {
  logConsumerFailure,
  logDisconnect,
  noteUnhandledEvent,
  warnDroppedBeforeOpen,
  warnHookStillRunning,
} from "./_connection_log.ts";

import {
  CLOSE_EVENT,
  CLOSE_TIMEOUT_MS,
  closedInConnect,
  HOOKS_AFTER_CLOSE_MS,
  NEVER_OPENED_REASON,
  OPEN_TIMEOUT_MS,
  PING_FRAME,
  PONG_FRAME,
} from "./_connection_constants.ts";

export type { ConnectRefusal } from "./_hook_calls.ts";

/**
 * The subprotocol a consumer accepted in `connect`, by connection, until the route answers the
 * handshake with it: kept here rather than in a field every idle socket would carry.
 */
export const acceptedSubprotocols: WeakMap<WebSocketConnection, string> = new WeakMap();

// Shared by every connection: a bound function or closure per socket is memory per socket.
const ignore = (): void => {};

/**
 * Runs one consumer on one socket: limits incoming frames, runs hooks one at a time in
 * arrival order, bounds what waits to be sent, and cleans up groups on close.
 */
export class WebSocketConnection implements Connection {
  // Kept small on purpose: every field here is memory per idle socket, times thousands.
  // The fields a group send reads for each member come first, next to the object's header, so
  // one delivery touches as few cache lines as it can (a room's send runs once per member).
  #socket: SocketLike | null = null;
  /** What waits for the end of the turn, for a client that opted in to batching; else null. */
  #batch: FrameBatch | null;
  // The last event type delivered and its handler: a socket's events are mostly of one type.
  #eventType: string | null = null;
  #eventHandler: EventHandler | undefined = undefined;
  /** The flags (`_connection_flags.ts`), in one field rather than 8 bytes each per socket. */
  #state = 0;
  /** The hooks' turns (`_hook_queue.ts`): what arrives while one runs waits there. */
  #queue: HookQueue<WebSocketConnection>;
  #deliveriesSinceCheck = 0;
  #droppedInARow = 0;
  /** The code the server closed with (0 until it does): a client may answer with another. */
  #closeCode = 0;
  /** The reason the server closed with (as sent), or one asked for before the socket existed. */
  #closeReason = "";
  readonly scope: Scope;
  readonly channelName: string;
  #layer: GroupLayer;
  #limits: ConnectionLimits;
  #hooks: ConsumerHooks;
  /** What was sent before the socket opened (`_before_open.ts`); `null` once it is open. */
  #beforeOpen: BeforeOpenQueue | null = null;
  #closeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #gate: FrameGate;
  /** One listener on its own (no array for the usual one), more in an array. */
  #whenDone: (() => void) | (() => void)[] | null = null;
  #onDroppedBeforeOpen: ((frames: number) => void) | undefined;
  #onFinished: ((socket: SocketLike | null, neverOpened: boolean) => void) | undefined;
  #onLayerGap: ((conn: WebSocketConnection) => void | Promise<void>) | undefined;
  #meter: RouteMeter;

  constructor(
    consumer: Consumer,
    options: {
      scope: Scope;
      layer: GroupLayer;
      limits: ConnectionLimits;
      /** Told how many frames were dropped before the socket opened, once it opens or closes. */
      onDroppedBeforeOpen?: (frames: number) => void;
      /**
       * Told once the connection finished, before the `onFinished` listeners, with its socket
       * (`null` if it never had one): one function per route, not a closure per socket.
       */
      onFinished?: (socket: SocketLike | null, neverOpened: boolean) => void;
      /** The client opted in to batched frames (see `_frame_batch.ts`). */
      batch?: boolean;
      /** Its route's counts: frames, bytes, drops, closes (default: counted nowhere). */
      meter?: RouteMeter;
      /**
       * Runs, in turn with the hooks, when the layer may have lost events to this socket (its
       * Redis subscription was restored): the route re-checks what it must (the session).
       * One function per route, not a closure per socket.
       */
      onLayerGap?: (conn: WebSocketConnection) => void | Promise<void>;
    },
  ) {
    this.#meter = options.meter ?? new RouteMeter("");
    this.#batch = options.batch === true ? new FrameBatch(this.#meter) : null;
    this.#onDroppedBeforeOpen = options.onDroppedBeforeOpen;
    this.#onFinished = options.onFinished;
    this.#onLayerGap = options.onLayerGap;
    this.scope = options.scope;
    this.#layer = options.layer;
    this.#limits = options.limits;
    this.#gate = new FrameGate(options.limits);
    this.#queue = new HookQueue<WebSocketConnection>(this, WebSocketConnection.fail, this.#limits);
    this.channelName = this.#layer.newChannel((event) => this.#deliver(event));
    this.#hooks = hooksOf(consumer, this);
  }

  get closed(): boolean {
    return (this.#state & (FINISHED | CLOSING)) !== 0;
  }

  /** Calls `listener` once the socket has closed and the consumer's `disconnect` has run. */
  onFinished(listener: () => void): void {
    const waiting = this.#whenDone;
    if ((this.#state & DONE) !== 0) listener();
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

  /**
   * Runs the `connect` hook; resolves `null` when the socket is accepted, else how the handshake
   * must be refused: 403 when the consumer said no (`false`, or a {@linkcode ProtocolError}
   * with its message), 500 (503 when a backend was away) when the hook failed, or a call it
   * did not await failed while it ran (the error is logged).
   */
  async runConnect(): Promise<ConnectRefusal | null> {
    // `connect` is a hook like any other: events that arrive meanwhile wait for it to finish.
    this.#queue.begin();
    this.#state |= IN_CONNECT;
    const refusal = await runConnectHook(this.#hooks, this.scope.path);
    this.#state &= ~IN_CONNECT;
    if (refusal === null && (this.#state & CLOSING) !== 0) {
      // Channels' `self.close()` in `connect` (or a close event meanwhile): the handshake is
      // refused. `connect` itself finished, so what it did is undone by `disconnect`, as
      // Channels runs `websocket_disconnect` after a rejected handshake.
      await this.#release();
      await runDisconnectHook(this.#hooks, this.#closeCode, this.scope.path);
      this.#markDone();
      // Not the consumer's refusal but its failure (`#fail`, logged): a call it did not await
      // failed while `connect` ran, and fails `connect` as a throw would, error included.
      if ((this.#state & FAILED) !== 0) return failedConnect(consumerFailures.get(this));
      return { status: 403, reason: closedInConnect(this.#closeReason), code: this.#closeCode };
    }
    if (refusal === null) {
      this.#queue.continueAfter(undefined); // what waited runs now, in order
      return null;
    }
    await this.#release();
    this.#markDone();
    // Said no (`false`, a `ProtocolError`) after a call it did not await failed: the failure
    // wins, as it does over a close in `connect`, so the error is not lost.
    if (refusal.status === 403 && (this.#state & FAILED) !== 0) {
      return failedConnect(consumerFailures.get(this));
    }
    return refusal;
  }

  /** Wires an upgraded socket to this connection. */
  attach(socket: SocketLike): void {
    this.#socket = socket;
    if (consumerFailures.has(this)) consumerFailures.set(socket, consumerFailures.get(this));
    const unhandled = unhandledEvents.get(this);
    if (unhandled !== undefined) unhandledEvents.set(socket, unhandled);
    if (this.#batch !== null) this.#batch.socket = socket;
    socket.onopen = () => this.#opened();
    socket.onmessage = (event) => this.#received(event.data);
    // Deno says 0 when no close frame came: 1006, as browsers and Channels say.
    socket.onclose = (event) =>
      void this.#closed(event.code === 0 ? CloseCode.ABNORMAL_CLOSURE : event.code, event.reason);
    socket.onerror = ignore; // the close event that follows does the cleanup
    // A client that left while `connect` ran gets a socket from Deno that never opens and
    // never closes: no event would ever end it (its groups, presence, cap place). Given up on
    // if it has not opened in time; `#opened` clears this.
    this.#closeTimer = setTimeout(() => this.#neverOpened(), OPEN_TIMEOUT_MS);
    if ((this.#state & CLOSING) !== 0) {
      // Closed after `connect` accepted the socket, before its upgrade (a log-out, say).
      this.#state &= ~CLOSING;
      this.close(this.#closeCode, this.#closeReason);
    }
  }

  send(data: string | Uint8Array): void {
    checkFrame(data);
    if ((this.#state & (FINISHED | CLOSING)) !== 0 || this.#overBudget()) return;
    const batch = this.#batch;
    if (batch === null) return this.#write(data);
    // A frame that is not one JSON value goes on its own, after what the batch holds.
    batch.flush();
    this.#write(typeof data === "string" ? asOneLine(data) : data);
  }

  #write(data: string | Uint8Array | WaitingJson): void {
    const socket = this.#socket;
    // One read of `readyState`: it is a getter with a brand check, and this runs per delivery.
    const state = socket === null ? CONNECTING : socket.readyState;
    if (state === OPEN) {
      if (typeof data === "string" || data instanceof Uint8Array) {
        socket!.send(data);
        this.#meter.sent(data);
      } else if (this.#batch !== null) this.#batch.add(data.json);
      else this.#write(data.json); // queued for a batch that was given up before the open
    } else if (state === CONNECTING) {
      (this.#beforeOpen ??= new BeforeOpenQueue(this.#beforeOpenBound())).add(data);
    }
  }

  sendJson(value: unknown): void {
    const text = jsonFrame(value);
    if (this.#batch === null) this.send(text);
    else if ((this.#state & (FINISHED | CLOSING)) === 0 && !this.#overBudget()) {
      this.#write({ json: text });
    }
  }

  get sendCapacity(): number {
    const socket = this.#socket;
    const state = socket === null ? CONNECTING : socket.readyState;
    if (state === CONNECTING) return this.#beforeOpen?.room ?? this.#beforeOpenBound();
    if (state !== OPEN) return 0;
    return Math.max(0, this.#limits.maxBufferedBytes - this.#unsentBytes());
  }

  // What waits to go out: Deno's queue, and a batch not yet flushed.
  #unsentBytes(): number {
    return (this.#socket?.bufferedAmount ?? 0) + (this.#batch?.pending ?? 0);
  }

  get sendBound(): number {
    return this.#limits.maxBufferedBytes;
  }

  #beforeOpenBound(): number {
    return this.#limits.maxBufferedBytes * BEFORE_OPEN_FACTOR;
  }

  // What the consumer sends on its own (a reply, a push from a timer) is bounded as group
  // deliveries are: a client that does not read it is closed (1013) rather than let its unsent
  // frames grow. A delivery's handler is not checked here: the delivery was, and drops instead.
  #overBudget(): boolean {
    if ((this.#state & DELIVERING) !== 0 || this.#socket === null || !this.#isCongested()) {
      return false;
    }
    this.close(CloseCode.TRY_AGAIN_LATER, "Too slow: what was sent to it was not read");
    return true;
  }

  sendError(message: string): void {
    this.sendJson(errorFrame(message));
  }

  close(code: number = CloseCode.NORMAL, reason = ""): void {
    checkCloseCode(code);
    const socket = this.#socket;
    if ((this.#state & (FINISHED | CLOSING)) !== 0) return;
    if (socket === null) {
      // No socket yet: in `connect` this refuses the handshake (`runConnect`); after it, the
      // socket closes as soon as it is attached (`attach`).
      this.#state |= CLOSING;
      this.#closeCode = code;
      this.#closeReason = reason;
      return;
    }
    if (socket.readyState === CONNECTING) {
      // Deno ignores a close of a server socket that has not opened yet: it opens all the same,
      // and no close frame ever goes (a drain's 1012 would never reach a handshake under way).
      // So the close waits for the open (`#opened`), after what was sent before it.
      this.#state |= CLOSING | CLOSE_AT_OPEN;
      this.#closeCode = code;
      this.#closeReason = reason;
      return;
    }
    // What was sent before the close goes before it.
    this.#batch?.flush();
    if (socket.readyState === OPEN) {
      // The socket closes a macrotask later (see `closeOnNextTurn`), after a refused frame once
      // the client stopped sending; nothing is sent meanwhile.
      this.#state |= CLOSING;
      this.#closeCode = code;
      this.#closeReason = closeReason(reason); // as sent: at most 123 bytes
      const refused = (this.#state & CLOSE_QUEUED) !== 0;
      const sent = () => void (this.#state |= CLOSE_SENT);
      closeOnNextTurn(
        socket,
        { code, reason: this.#closeReason, scope: this.scope, sent },
        refused,
      );
      // A client that never reads never answers the close frame either: stop waiting for it,
      // so its groups and channel are released now rather than when TCP gives up.
      clearTimeout(this.#closeTimer); // the wait for the open, if it still runs
      this.#closeTimer = setTimeout(() => void this.#closed(code), CLOSE_TIMEOUT_MS);
    }
  }

  // Through `Promise.try`: a layer that throws rather than rejects still gives the consumer a
  // rejected promise, as the contract says, so its `.catch` sees the failure. One that nothing
  // awaits fails this connection, not the process (`_unawaited.ts`).
  groupAdd(group: string): Promise<void> {
    // The layer remembers the channel's groups: closing the channel leaves them all.
    const adding = Promise.try(() => this.#layer.groupAdd(group, this.channelName));
    return failingItsConnection(adding, this, "groupAdd", WebSocketConnection.fail);
  }

  groupDiscard(group: string): Promise<void> {
    const leaving = Promise.try(() => this.#layer.groupDiscard(group, this.channelName));
    return failingItsConnection(leaving, this, "groupDiscard", WebSocketConnection.fail);
  }

  groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    const sending = Promise.try(() => this.#layer.groupSend(group, event));
    return failingItsConnection(sending, this, "groupSend", WebSocketConnection.fail);
  }

  acceptSubprotocol(name: string): void {
    if (this.#socket !== null || (this.#state & (FINISHED | CLOSING)) !== 0) {
      throw new Error("acceptSubprotocol() answers the handshake: call it in connect");
    }
    const offered = this.scope.subprotocols;
    if (!offered.includes(name)) {
      throw new TypeError(
        `The client did not offer the subprotocol ${JSON.stringify(name)} (it offered ${
          offered.length === 0 ? "none" : offered.map((one) => JSON.stringify(one)).join(", ")
        })`,
      );
    }
    acceptedSubprotocols.set(this, name);
  }

  /** Sends one message per frame after all: the 101 names a subprotocol other than batching's. */
  stopBatching(): void {
    this.#batch = null;
  }

  channelSend(channel: string, event: LayerEvent): Promise<SendResult> {
    const sending = Promise.try(() => this.#layer.send(channel, event));
    return failingItsConnection(sending, this, "channelSend", WebSocketConnection.fail);
  }

  #neverOpened(): void {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== CONNECTING) return;
    try {
      socket.close(CloseCode.GOING_AWAY);
    } catch {
      // the socket is gone already
    }
    this.#state |= NEVER_OPENED;
    this.#meter.neverOpened++;
    // As a connection lost without a close frame reads, with why in the log line.
    void this.#closed(1006, NEVER_OPENED_REASON);
  }

  /**
   * True when the socket was upgraded but never opened: its client left during the upgrade,
   * and Deno keeps its descriptor (see `OPEN_TIMEOUT_MS`).
   */
  get neverOpened(): boolean {
    return (this.#state & NEVER_OPENED) !== 0;
  }

  #opened(): void {
    clearTimeout(this.#closeTimer);
    const queue = this.#beforeOpen;
    this.#beforeOpen = null;
    // A close asked for before the open goes now, after the frames sent before it.
    const closeAtOpen = (this.#state & CLOSE_AT_OPEN) !== 0;
    if (closeAtOpen) this.#state &= ~(CLOSING | CLOSE_AT_OPEN);
    try {
      for (const frame of queue?.frames ?? []) {
        if ((this.#state & (FINISHED | CLOSING)) !== 0) break;
        // Written as they were queued: they were counted against the bound then, not again.
        if (typeof frame === "string" || frame instanceof Uint8Array) this.#batch?.flush();
        this.#write(frame);
      }
    } catch (error) {
      // An event handler must not throw: that would end the process, not this socket.
      this.#fail(error);
    }
    this.#reportDroppedBeforeOpen(queue);
    if (closeAtOpen) this.close(this.#closeCode, this.#closeReason);
  }

  // Never silent: what `connect` sent beyond the queue is counted and logged like any drop.
  #reportDroppedBeforeOpen(queue: BeforeOpenQueue | null): void {
    if (queue === null || queue.dropped === 0) return;
    this.#onDroppedBeforeOpen?.(queue.dropped);
    warnDroppedBeforeOpen(this.scope, queue.dropped, queue.bound);
  }

  #deliver(event: LayerEvent): boolean {
    if (event.type === CLOSE_EVENT) {
      // The framework's own event: e.g. a log-out closing that session's sockets everywhere.
      // It may come from outside (a Redis publish): a code no close frame may carry is 1000.
      const code = Number(event.code ?? CloseCode.NORMAL);
      this.close(isSendableCloseCode(code) ? code : CloseCode.NORMAL, String(event.reason ?? ""));
      return true;
    }
    const handler = event.type === this.#eventType
      ? this.#eventHandler
      : this.#lookUpHandler(event.type);
    // Not for us, or a socket on its way out: nothing to drop.
    if (handler === undefined || (this.#state & (FINISHED | CLOSING)) !== 0) return true;
    const congested = this.#isCongested();
    const queue = this.#queue;
    if (!congested && !queue.running) {
      // Nothing waits (the usual case): run the handler now, without a task and its promise.
      this.#droppedInARow = 0;
      // DELIVERING while the handler runs: what it sends at once is this delivery's, checked
      // against the socket's bounds already (see `#overBudget`). Set and cleared inline, on the
      // path of every delivery.
      queue.begin();
      this.#state |= DELIVERING;
      let pending;
      try {
        // The hooks are `this`: a class's handlers can be shared by all its sockets.
        pending = handler.call(this.#hooks, event);
      } catch (error) {
        this.#state &= ~DELIVERING;
        this.#fail(error);
      }
      this.#state &= ~DELIVERING;
      queue.continueAfter(pending);
      return true;
    }
    if (congested || !queue.enqueue(() => this.#callHandler(handler, event))) {
      this.#meter.dropped(congested);
      this.#watchDrain();
      // A reader this far behind will not catch up; closing frees its memory for good.
      // Only a socket that exists can be too slow: before it opens, `connect` is what runs.
      if (++this.#droppedInARow >= this.#limits.channelCapacity && this.#socket !== null) {
        this.close(CloseCode.TRY_AGAIN_LATER, "Too slow: messages were dropped");
      }
      return false;
    }
    this.#droppedInARow = 0;
    return true;
  }

  // The hooks are `this`: a class's handlers can be shared by all its sockets. What the handler
  // sends at once is this delivery's, checked against the socket's bounds already.
  #callHandler(handler: EventHandler, event: LayerEvent): void | Promise<void> {
    this.#state |= DELIVERING;
    try {
      return handler.call(this.#hooks, event);
    } finally {
      this.#state &= ~DELIVERING;
    }
  }

  #lookUpHandler(type: string): EventHandler | undefined {
    // The framework's own event, not cached as the last type: the next gap comes here too.
    if (type === LAYER_GAP) return void this.#layerGap();
    let handler;
    try {
      handler = ownEventHandler(this.#hooks, type);
    } catch (error) {
      return void this.#fail(error); // a handler that is no function: the consumer's bug
    }
    this.#eventType = type;
    this.#eventHandler = handler;
    if (handler === undefined) {
      noteUnhandledEvent(this.#meter, this.scope, type, this.#hooks.events, this.#socket ?? this);
    }
    return handler;
  }

  // Events to this socket were dropped: see `_drain_watch.ts`. The object the watch reads is
  // made only for a socket that falls behind.
  #watchDrain(): void {
    if ((this.#state & DRAIN_WATCHED) !== 0) return;
    this.#state |= DRAIN_WATCHED;
    watchDrain(this, {
      live: () => (this.#state & (FINISHED | CLOSING | FAILED)) === 0,
      unsentBytes: () => this.#unsentBytes(),
      hadRoom: () => {
        const seen = (this.#state & ROOM_SEEN) !== 0;
        this.#state &= ~ROOM_SEEN;
        return seen;
      },
      caughtUp: () => this.sendCapacity >= this.#limits.maxBufferedBytes / 2,
      resume: () => this.#hooks.drained === undefined || this.#queue.enqueue(() => this.#drained()),
      stalled: (seconds) =>
        this.close(CloseCode.TRY_AGAIN_LATER, `Too slow: nothing was read for ${seconds} s`),
      done: () => void (this.#state &= ~(DRAIN_WATCHED | CONGESTED)),
    }, this.#limits.stalledReaderSeconds);
  }

  #drained(): void | Promise<void> {
    return this.#hooks.drained?.call(this.#hooks);
  }

  // The layer may have lost events to this socket ({@linkcode LAYER_GAP}): in turn with its
  // hooks, the route re-checks it (a log-out's close may be among them), then, as after events
  // dropped for a slow reader, the consumer sends again what it can. In turn, so that nothing
  // reaches a socket whose session ended before the re-check has said so. Each of the socket's
  // groups says so at once after a restore: one re-check serves them all.
  #layerGap(): void {
    if ((this.#state & (GAP_PENDING | FINISHED | CLOSING)) !== 0) return;
    this.#state |= GAP_PENDING;
    if (this.#queue.enqueue(() => this.#afterGap(true))) return;
    // A full queue: the re-check runs now, and the resend once the socket has caught up.
    void this.#afterGap(false);
  }

  async #afterGap(inTurn: boolean): Promise<void> {
    try {
      await this.#onLayerGap?.(this);
    } catch (error) {
      log.warn(`Could not re-check ${this.scope.path} after a gap`, error);
    } finally {
      this.#state &= ~GAP_PENDING;
    }
    if ((this.#state & (FINISHED | CLOSING)) !== 0 || this.#hooks.drained === undefined) return;
    if (inTurn) await this.#drained();
    else this.#watchDrain();
  }

  // Reading `bufferedAmount` is a call into Deno's runtime: while the socket keeps up, ask on
  // every 8th delivery (so it may overshoot the bound by 7 frames); once behind, on each one.
  // What waits in a batch is unsent too, and counts.
  #isCongested(): boolean {
    const socket = this.#socket;
    if (socket === null) return false;
    if ((this.#state & CONGESTED) === 0 && (++this.#deliveriesSinceCheck & 7) !== 0) return false;
    const waiting = this.#batch === null ? 0 : this.#batch.pending;
    const congested = socket.bufferedAmount + waiting > this.#limits.maxBufferedBytes;
    this.#state = congested ? this.#state | CONGESTED : (this.#state & ~CONGESTED) | ROOM_SEEN;
    return congested;
  }

  #received(data: IncomingFrame): void {
    if ((this.#state & (FINISHED | CLOSE_QUEUED | FAILED)) !== 0) return;
    this.#meter.received(data);
    const refusal = this.#gate.check(data);
    if (refusal !== null) {
      this.#refuseFrame(refusal);
      return;
    }
    // The client module's heartbeat, answered here: the consumer never sees it.
    if (data === PING_FRAME) return this.send(PONG_FRAME);
    const queue = this.#queue;
    if (!queue.running) {
      // Nothing waits (the usual case): dispatch now, without a task closure.
      queue.begin();
      let pending;
      try {
        pending = dispatchFrame(this.#hooks, data);
      } catch (error) {
        this.#fail(error);
      }
      queue.continueAfter(pending);
      return;
    }
    if (!queue.enqueue(() => dispatchFrame(this.#hooks, data))) {
      const ref = typeof data === "string" ? frameRef(data) : undefined;
      this.#refuse(
        new ProtocolError("Server busy: message dropped", CloseCode.TRY_AGAIN_LATER, { ref }),
      );
    }
  }

  /**
   * Fails `conn`'s consumer as a hook that throws does: for framework code that runs the app's
   * functions away from any hook (a stream follower's gap read), where a throw would reach
   * nothing. False for a connection of another kind.
   */
  static fail(conn: Connection, error: unknown): boolean {
    if (!(#fail in conn)) return false;
    conn.#fail(error);
    return true;
  }

  #fail(error: unknown): void {
    if (error instanceof ProtocolError) {
      this.#refuse(error);
      return;
    }
    const state = this.#state;
    const when = (state & FINISHED) !== 0
      ? "closed"
      : (state & IN_CONNECT) !== 0
      ? "connecting"
      : "open";
    logConsumerFailure(this.scope, error, when);
    // By the socket, or until there is one by this connection (a handler that ran between
    // `connect` and the upgrade): `attach` moves it.
    // What it raised once the socket had closed is told apart: the socket closed without it.
    if ((this.#state & FINISHED) !== 0) this.#failedLate(error);
    else consumerFailures.set(this.#socket ?? this, error);
    this.#state |= FAILED; // and what still arrives before the close is not handled either
    // As a Channels consumer that raised: what waits is dropped, but for the close's own last
    // task once the socket closed (it runs `disconnect`).
    this.#queue.dropWaiting((this.#state & FINISHED) !== 0);
    this.close(CloseCode.INTERNAL_ERROR, "Internal server error");
  }

  #refuse(error: ProtocolError): void {
    this.#sendRefusal(error);
    if (error.code !== undefined) this.close(error.code, error.message);
  }

  // The error frame names the client's frame when it had a `ref`, and the close that follows it
  // (`closing`): a client that stops sending then lets the close frame reach it (see
  // `closeOnNextTurn`), where one still sending loses it to the connection's reset.
  #sendRefusal(error: ProtocolError): void {
    this.sendJson(errorFrame(error.message, { ref: error.ref, closing: error.code }));
  }

  /** Refuses an incoming frame; a close waits for the frames accepted before it. */
  #refuseFrame(error: ProtocolError): void {
    const code = error.code;
    if (code === undefined) return this.#refuse(error);
    // The client was told of every refusal, so what it was not told about must not vanish.
    this.#state |= CLOSE_QUEUED;
    this.#sendRefusal(error);
    const close = () => this.close(code, error.message);
    if (!this.#queue.enqueue(close)) close();
  }

  /**
   * Ends a connection whose socket never opened (the handshake failed after `connect` ran):
   * its groups are left and its consumer's `disconnect(code)` runs, as on a close.
   */
  abort(code: number): Promise<void> {
    return this.#closed(code);
  }

  // `reason`: the close frame's, or Deno's own when it gave up (a ping never answered).
  async #closed(code: number, reason = ""): Promise<void> {
    clearTimeout(this.#closeTimer);
    if ((this.#state & FINISHED) !== 0) return;
    this.#state |= FINISHED;
    // The server's close, when it asked for one; it ended the socket only once its frame went
    // (a client that closed first, its close frame crossing the server's decision, did).
    const asked = (this.#state & CLOSING) !== 0;
    const byServer = (this.#state & CLOSE_SENT) !== 0;
    // Counted, as logged, under the server's code once its close frame went: a client that
    // answers 1000, or drops the connection, must not hide a kick (1008, 1009, 1013). A kick
    // whose frame never went (the client's close came first) is counted as the client's close.
    // It was counted open once attached.
    if (this.#socket !== null) this.#meter.closed(byServer ? this.#closeCode : code);
    this.#batch?.discard();
    if (this.#socket !== null) {
      detachHandlers(this.#socket);
      cancelPendingClose(this.#socket); // the client's close came first
    }
    if ((this.#state & DRAIN_WATCHED) !== 0) stopDrainWatch(this);
    this.#reportDroppedBeforeOpen(this.#beforeOpen);
    this.#beforeOpen = null;
    logDisconnect(
      this.scope,
      code,
      asked ? { code: this.#closeCode, reason: this.#closeReason, sent: byServer } : undefined,
      reason,
    );
    await this.#handledBeforeClose();
    await this.#release();
    const failure = await runDisconnectHook(this.#hooks, code, this.scope.path);
    if (failure !== undefined) this.#failedLate(failure);
    this.#markDone();
  }

  // A hook failed after the close, where no close code can tell of it: kept for the
  // communicator (the first such failure), as it is logged.
  #failedLate(error: unknown): void {
    const key = this.#socket ?? this;
    if (!lateFailures.has(key)) lateFailures.set(key, error);
  }

  // What reached the socket before it closed is handled first, in order, and the hook that runs
  // finishes, as Channels handles what came before `websocket.disconnect`: a message sent just
  // before a tab closed is not lost, and `disconnect` never runs in the middle of another hook.
  // Groups are left after (a hook may still join one). A hook that still runs
  // `HOOKS_AFTER_CLOSE_MS` after the close is not waited for: what waits behind it is dropped.
  #handledBeforeClose(): Promise<void> {
    return this.#queue.finish(HOOKS_AFTER_CLOSE_MS, () => {
      warnHookStillRunning(this.scope, HOOKS_AFTER_CLOSE_MS);
    });
  }

  #markDone(): void {
    this.#state |= DONE;
    this.#onFinished?.(this.#socket, (this.#state & NEVER_OPENED) !== 0);
    const listeners = this.#whenDone;
    this.#whenDone = null;
    if (typeof listeners === "function") listeners();
    else for (const listener of listeners ?? []) listener();
  }

  // Closing the channel leaves every group it joined (the layer's contract), before the
  // consumer's `disconnect` runs.
  async #release(): Promise<void> {
    this.#state |= FINISHED;
    try {
      // Awaited inside `try`: a layer that throws rather than rejects must not end the process.
      await this.#layer.closeChannel(this.channelName);
    } catch (error) {
      log.warn(`Could not close channel ${this.channelName} and leave its groups`, error);
    }
  }
}
