/**
 * A connection's hot path: what runs per frame and per delivery. Sending within the socket's
 * bounds, delivering a group's events to their handlers, taking the client's frames in turn with
 * the hooks, and the congestion check both of those read. The whole connection is
 * `WebSocketConnection` (`_connection.ts`), built on this class in steps: what it does when
 * something goes wrong (`_connection_trouble.ts`), its close and finish
 * (`_connection_closing.ts`), then its opening.
 *
 * Separate because it is the one part whose cost counts per message: it owns every field those
 * paths read, as private fields, so none of them goes through an accessor or another object.
 * The subclasses, which run once per socket or once something went wrong, reach the fields
 * through the protected accessors at the end (an accessor costs nothing there). The `#state`
 * bits every part reads are in `_connection_flags.ts`.
 */
import type { Connection, ConsumerHooks, Scope } from "./consumer.ts";
import { type GroupLayer, LAYER_GAP, type LayerEvent, type SendResult } from "../layers/layer.ts";
import {
  CloseCode,
  errorFrame,
  frameRef,
  isSendableCloseCode,
  ProtocolError,
} from "./close_codes.ts";
import { asOneLine, FrameBatch } from "./_frame_batch.ts";
import { FrameGate, type IncomingFrame } from "./_frame_gate.ts";
import type { ConnectionLimits, SocketLike } from "./_socket.ts";
import { RouteMeter } from "./server_metrics.ts";
import {
  CLOSE_QUEUED,
  CLOSING,
  CONGESTED,
  CONNECTING,
  DELIVERING,
  DRAIN_WATCHED,
  FAILED,
  FINISHED,
  OPEN,
  ROOM_SEEN,
} from "./_connection_flags.ts";
import { HookQueue } from "./_hook_queue.ts";
import { dispatchFrame, type EventHandler, ownEventHandler } from "./_hook_calls.ts";
import { checkFrame, jsonFrame } from "./_send_checks.ts";
import { BEFORE_OPEN_FACTOR, BeforeOpenQueue, type WaitingFrame } from "./_before_open.ts";
import { noteUnhandledEvent } from "./_connection_log.ts";
import { CLOSE_EVENT, PING_FRAME, PONG_FRAME, RECHECK_EVENT } from "./_connection_constants.ts";

/** What the paths here read of a connection's options (`WebSocketConnectionOptions`). */
export interface TrafficOptions {
  scope: Scope;
  layer: GroupLayer;
  limits: ConnectionLimits;
  /** The client opted in to batched frames (see `_frame_batch.ts`). */
  batch?: boolean;
  /** Its route's counts: frames, bytes, drops, closes (default: counted nowhere). */
  meter?: RouteMeter;
}

/** The per-frame and per-delivery paths of a connection; see the module's doc. */
export abstract class ConnectionTraffic implements Connection {
  // Kept small on purpose: every field here is memory per idle socket, times thousands.
  // The fields a group send reads for each member come first, next to the object's header, so
  // one delivery touches as few cache lines as it can (a room's send runs once per member).
  // A subclass's fields come after these.
  #socket: SocketLike | null = null;
  /** What waits for the end of the turn, for a client that opted in to batching; else null. */
  #batch: FrameBatch | null;
  // The last event type delivered and its handler: a socket's events are mostly of one type.
  #eventType: string | null = null;
  #eventHandler: EventHandler | undefined = undefined;
  /** The flags (`_connection_flags.ts`), in one field rather than 8 bytes each per socket. */
  #state = 0;
  /** The hooks' turns (`_hook_queue.ts`): what arrives while one runs waits there. */
  #queue: HookQueue<ConnectionTraffic>;
  #deliveriesSinceCheck = 0;
  #droppedInARow = 0;
  readonly scope: Scope;
  readonly channelName: string;
  #limits: ConnectionLimits;
  /** Set by the whole connection once its fields are all made: the consumer may use them. */
  #hooks!: ConsumerHooks;
  /** What was sent before the socket opened (`_before_open.ts`); `null` once it is open. */
  #beforeOpen: BeforeOpenQueue | null = null;
  #gate: FrameGate;
  #meter: RouteMeter;

  constructor(options: TrafficOptions) {
    this.#meter = options.meter ?? new RouteMeter("");
    this.#batch = options.batch === true ? new FrameBatch(this.#meter) : null;
    this.scope = options.scope;
    this.#limits = options.limits;
    this.#gate = new FrameGate(options.limits);
    this.#queue = new HookQueue<ConnectionTraffic>(this, ConnectionTraffic.fail, this.#limits);
    // The layer itself is kept by `_connection_closing.ts`, with the calls that use it.
    this.channelName = options.layer.newChannel((event) => this.#deliver(event));
  }

  get closed(): boolean {
    return (this.#state & (FINISHED | CLOSING)) !== 0;
  }

  // The rest of `Connection`, run once per socket or per call: `_connection_closing.ts`
  // (the close, the groups) and `_connection.ts` (the subprotocol).
  abstract close(code?: number, reason?: string): void;
  abstract groupAdd(group: string): Promise<void>;
  abstract groupDiscard(group: string): Promise<void>;
  abstract groupSend(group: string, event: LayerEvent): Promise<SendResult>;
  abstract channelSend(channel: string, event: LayerEvent): Promise<SendResult>;
  abstract acceptSubprotocol(name: string): void;

  send(data: string | Uint8Array): void {
    checkFrame(data);
    if ((this.#state & (FINISHED | CLOSING)) !== 0 || this.#overBudget()) return;
    const batch = this.#batch;
    if (batch === null) return this.#write(data);
    // A frame that is not one JSON value goes on its own, after what the batch holds.
    batch.flush();
    this.#write(typeof data === "string" ? asOneLine(data) : data);
  }

  #write(data: WaitingFrame): void {
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

  /** Sends one message per frame after all: the 101 names a subprotocol other than batching's. */
  stopBatching(): void {
    this.#batch = null;
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
      : this.#lookUpHandler(event.type, event);
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
        this.failConsumer(error);
      }
      this.#state &= ~DELIVERING;
      queue.continueAfter(pending);
      return true;
    }
    if (congested || !queue.enqueue(() => this.#callHandler(handler, event))) {
      this.#meter.dropped(congested);
      // Checked here, not by a call per drop: a socket this far behind sees many.
      if ((this.#state & DRAIN_WATCHED) === 0) this.watchDrain();
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

  #lookUpHandler(type: string, event: LayerEvent): EventHandler | undefined {
    // The framework's own events, not cached as the last type: the next one comes here too.
    if (type === LAYER_GAP) return void this.layerGap();
    if (type === RECHECK_EVENT) return void this.recheckAsked(event);
    let handler;
    try {
      handler = ownEventHandler(this.#hooks, type);
    } catch (error) {
      return void this.failConsumer(error); // a handler that is no function: the consumer's bug
    }
    this.#eventType = type;
    this.#eventHandler = handler;
    if (handler === undefined) {
      const socket = this.reportKey;
      noteUnhandledEvent(type, {
        route: this.#meter,
        scope: this.scope,
        socket,
        hooks: this.#hooks,
      });
    }
    return handler;
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
      this.refuseFrame(refusal);
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
        this.failConsumer(error);
      }
      queue.continueAfter(pending);
      return;
    }
    if (!queue.enqueue(() => dispatchFrame(this.#hooks, data))) {
      const ref = typeof data === "string" ? frameRef(data) : undefined;
      this.refuse(
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
    if (!(#state in conn)) return false;
    conn.failConsumer(error);
    return true;
  }

  // What goes wrong on these paths is handled in `_connection_trouble.ts`: one method call from
  // here, with no closure or object made for it, and off the usual path.
  /** Fails the consumer as a hook that throws does (1011, or a `ProtocolError`'s refusal). */
  protected abstract failConsumer(error: unknown): void;
  /** Tells the client of `error`, and closes when it carries a code. */
  protected abstract refuse(error: ProtocolError): void;
  /** Refuses an incoming frame; a close waits for the frames accepted before it. */
  protected abstract refuseFrame(error: ProtocolError): void;
  /** Events to this socket were dropped: `drained` runs once it has caught up. */
  protected abstract watchDrain(): void;
  /** The layer may have lost events to this socket ({@linkcode LAYER_GAP}). */
  protected abstract layerGap(): void;
  /** A {@linkcode RECHECK_EVENT} asks to check again what signed this socket in. */
  protected abstract recheckAsked(event: LayerEvent): void;

  // For the subclasses, which run once per socket or once something went wrong: the fields
  // above, read and set from there. Never used on the paths above.

  /** Hands the client's frames from `socket` to this connection (the per-frame path). */
  protected takeFramesFrom(socket: SocketLike): void {
    socket.onmessage = (event) => this.#received(event.data);
  }

  /** What waits to go out (the drain watch reads it). */
  protected unsentBytes(): number {
    return this.#unsentBytes();
  }

  /** Writes a frame queued before the socket opened, as it was queued. */
  protected writeQueued(frame: WaitingFrame): void {
    this.#write(frame);
  }

  protected get state(): number {
    return this.#state;
  }
  protected set state(bits: number) {
    this.#state = bits;
  }
  protected get socket(): SocketLike | null {
    return this.#socket;
  }
  protected set socket(socket: SocketLike) {
    this.#socket = socket;
  }
  /**
   * What reports of this connection for a communicator are filed under (`_consumer_failures.ts`):
   * its socket once it has one, else the connection itself (`attach` files them again).
   */
  protected get reportKey(): object {
    return this.#socket ?? this;
  }
  protected get beforeOpen(): BeforeOpenQueue | null {
    return this.#beforeOpen;
  }
  protected set beforeOpen(queue: null) {
    this.#beforeOpen = queue;
  }
  protected get hooks(): ConsumerHooks {
    return this.#hooks;
  }
  protected set hooks(hooks: ConsumerHooks) {
    this.#hooks = hooks;
  }
  protected get batch(): FrameBatch | null {
    return this.#batch;
  }
  protected get queue(): HookQueue<ConnectionTraffic> {
    return this.#queue;
  }
  protected get limits(): ConnectionLimits {
    return this.#limits;
  }
  protected get meter(): RouteMeter {
    return this.#meter;
  }
}
