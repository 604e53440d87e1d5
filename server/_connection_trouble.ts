/**
 * What a connection (`_connection.ts`) does when something goes wrong on its per-frame and
 * per-delivery paths (`_connection_traffic.ts`): a consumer that fails (1011, or the refusal a
 * `ProtocolError` asks for), a client's frame refused (too big, too fast, a full queue), a
 * reader too slow for what is delivered to it (the drain watch, then `drained`), events the
 * layer may have lost (the route's re-check, then `drained`), and a re-check asked for
 * (`session.recheck`).
 *
 * Separate because none of it runs while all goes well: those paths only call in here (one
 * method call, no closure or object made for it), and this reaches their fields through the
 * protected accessors, which cost nothing off the usual path.
 */
import { CloseCode, errorFrame, ProtocolError } from "./close_codes.ts";
import { log } from "../telemetry/log.ts";
import {
  CLOSE_QUEUED,
  CLOSING,
  CONGESTED,
  DRAIN_WATCHED,
  FAILED,
  FINISHED,
  GAP_PENDING,
  IN_CONNECT,
  RECHECK_PENDING,
  ROOM_SEEN,
} from "./_connection_flags.ts";
import { consumerFailures, lateFailures } from "./_consumer_failures.ts";
import { watchDrain as watchSocketDrain } from "./_drain_watch.ts";
import { logConsumerFailure } from "./_connection_log.ts";
import { ConnectionTraffic } from "./_connection_traffic.ts";
import type { LayerEvent } from "../layers/layer.ts";

/** A connection's handling of what goes wrong; see the module's doc. */
export abstract class ConnectionTrouble extends ConnectionTraffic {
  /** The route's re-check: after a layer gap (see `layerGap`), or `asked` by an event. */
  protected abstract routeRecheck(asked?: LayerEvent): void | Promise<void>;

  protected failConsumer(error: unknown): void {
    if (error instanceof ProtocolError) {
      this.refuse(error);
      return;
    }
    const state = this.state;
    const when = (state & FINISHED) !== 0
      ? "closed"
      : (state & IN_CONNECT) !== 0
      ? "connecting"
      : "open";
    logConsumerFailure(this.scope, error, when);
    // By the socket, or until there is one by this connection (a handler that ran between
    // `connect` and the upgrade): `attach` moves it.
    // What it raised once the socket had closed is told apart: the socket closed without it.
    if ((this.state & FINISHED) !== 0) this.failedLate(error);
    else consumerFailures.set(this.reportKey, error);
    this.state |= FAILED; // and what still arrives before the close is not handled either
    // As a Channels consumer that raised: what waits is dropped, but for the close's own last
    // task once the socket closed (it runs `disconnect`).
    this.queue.dropWaiting((this.state & FINISHED) !== 0);
    this.close(CloseCode.INTERNAL_ERROR, "Internal server error");
  }

  protected refuse(error: ProtocolError): void {
    this.#sendRefusal(error);
    if (error.code !== undefined) this.close(error.code, error.message);
  }

  // The error frame names the client's frame when it had a `ref`, and the close that follows it
  // (`closing`): a client that stops sending then lets the close frame reach it (see
  // `closeOnNextTurn`), where one still sending loses it to the connection's reset.
  #sendRefusal(error: ProtocolError): void {
    this.sendJson(errorFrame(error.message, { ref: error.ref, closing: error.code }));
  }

  protected refuseFrame(error: ProtocolError): void {
    const code = error.code;
    if (code === undefined) return this.refuse(error);
    // The client was told of every refusal, so what it was not told about must not vanish.
    this.state |= CLOSE_QUEUED;
    this.#sendRefusal(error);
    const close = () => this.close(code, error.message);
    if (!this.queue.enqueue(close)) close();
  }

  // A hook failed after the close, where no close code can tell of it: kept for the
  // communicator (the first such failure), as it is logged.
  protected failedLate(error: unknown): void {
    const key = this.socket ?? this;
    if (!lateFailures.has(key)) lateFailures.set(key, error);
  }

  // Events to this socket were dropped: see `_drain_watch.ts`. The object the watch reads is
  // made only for a socket that falls behind.
  protected watchDrain(): void {
    if ((this.state & DRAIN_WATCHED) !== 0) return;
    this.state |= DRAIN_WATCHED;
    watchSocketDrain(this, {
      live: () => (this.state & (FINISHED | CLOSING | FAILED)) === 0,
      unsentBytes: () => this.unsentBytes(),
      hadRoom: () => {
        const seen = (this.state & ROOM_SEEN) !== 0;
        this.state &= ~ROOM_SEEN;
        return seen;
      },
      caughtUp: () => this.sendCapacity >= this.limits.maxBufferedBytes / 2,
      resume: () => this.hooks.drained === undefined || this.queue.enqueue(() => this.#drained()),
      stalled: (seconds) =>
        this.close(CloseCode.TRY_AGAIN_LATER, `Too slow: nothing was read for ${seconds} s`),
      done: () => void (this.state &= ~(DRAIN_WATCHED | CONGESTED)),
    }, this.limits.stalledReaderSeconds);
  }

  #drained(): void | Promise<void> {
    return this.hooks.drained?.call(this.hooks);
  }

  // The layer may have lost events to this socket ({@linkcode LAYER_GAP}): in turn with its
  // hooks, the route re-checks it (a log-out's close may be among them), then, as after events
  // dropped for a slow reader, the consumer sends again what it can. In turn, so that nothing
  // reaches a socket whose session ended before the re-check has said so. Each of the socket's
  // groups says so at once after a restore: one re-check serves them all.
  protected layerGap(): void {
    if ((this.state & (GAP_PENDING | FINISHED | CLOSING)) !== 0) return;
    this.state |= GAP_PENDING;
    if (this.queue.enqueue(() => this.#afterGap(true))) return;
    // A full queue: the re-check runs now, and the resend once the socket has caught up.
    void this.#afterGap(false);
  }

  async #afterGap(inTurn: boolean): Promise<void> {
    try {
      await this.routeRecheck();
    } catch (error) {
      log.warn(`Could not re-check ${this.scope.path} after a gap`, error);
    } finally {
      this.state &= ~GAP_PENDING;
    }
    if ((this.state & (FINISHED | CLOSING)) !== 0 || this.hooks.drained === undefined) return;
    if (inTurn) await this.#drained();
    else this.watchDrain();
  }

  // A `session.recheck` event (`RECHECK_EVENT`) asked: in turn with the hooks, as after a gap,
  // so that nothing reaches a socket whose session ended before the re-check has said so. No
  // event was lost, so nothing is sent again. One re-check waiting serves every event that comes
  // meanwhile (a burst would otherwise ask Django once each, and hold the socket's frames behind
  // them); it stops waiting as it starts, since its question may predate an event that comes
  // while it runs, which then queues one more.
  protected recheckAsked(event: LayerEvent): void {
    if ((this.state & (RECHECK_PENDING | FINISHED | CLOSING)) !== 0) return;
    this.state |= RECHECK_PENDING;
    const run = () => {
      this.state &= ~RECHECK_PENDING;
      return Promise.try(() => this.routeRecheck(event)).catch((error) =>
        log.warn(`Could not re-check ${this.scope.path} when asked`, error)
      );
    };
    if (!this.queue.enqueue(run)) void run(); // a full queue: now, as a gap's re-check
  }
}
