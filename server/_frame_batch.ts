/**
 * Frame batching for the clients that opt in (`?batch=1`, or the `channels.batch`
 * subprotocol): the JSON frames queued for one socket within one event-loop turn leave as one
 * WebSocket text frame, one JSON value per line (newline-delimited JSON, as Centrifugo does).
 * The socket then pays one send, and one write, per turn instead of one per message: under
 * load, when a turn delivers many messages to each socket, that is most of a delivery's cost.
 *
 * Only `sendJson` frames are batched: `JSON.stringify` never writes a raw newline, so a line is
 * always one value. A text frame sent with `send` or a binary frame sends the batch first, then
 * goes as its own frame, so the socket's order is kept; a JSON text laid out over lines goes as
 * one line (`asOneLine`), or the client would read its lines as values.
 */
import type { SocketLike } from "./_socket.ts";
import { RouteMeter } from "./_route_meter.ts";
import { offeredSubprotocols } from "./handshake.ts";

/** The subprotocol a client offers (`Sec-WebSocket-Protocol`) to receive batched frames. */
export const BATCH_PROTOCOL = "channels.batch";
/** The query parameter (`?batch=1`) by which a client asks for batched frames. */
export const BATCH_PARAMETER = "batch";
/** A batch of this many UTF-8 bytes is sent at once: bounded memory, and bounded frames. */
export const MAX_BATCH_BYTES = 64 * 1024;
const OPEN = 1;

/** How a handshake asked for batching: not at all, by the query, or by the subprotocol. */
export type BatchRequest = "none" | "query" | "protocol";

/** Reads whether the client opted in to batched frames, and how. */
export function batchRequested(request: Request, url: URL): BatchRequest {
  if (offeredSubprotocols(request.headers).includes(BATCH_PROTOCOL)) return "protocol";
  return url.searchParams.get(BATCH_PARAMETER) === "1" ? "query" : "none";
}

/**
 * `text` as one line for a batching client, which reads each line of a frame as one JSON
 * value: a JSON text laid out over lines (`JSON.stringify(value, null, 2)`) has its newlines
 * made spaces, which keeps its value (a raw newline in JSON is only ever whitespace). Any other
 * text is sent as it is: such a client cannot read it whole anyway.
 */
export function asOneLine(text: string): string {
  if (!text.includes("\n")) return text;
  try {
    JSON.parse(text);
  } catch {
    return text;
  }
  return text.replaceAll("\n", " ");
}

/**
 * The JSON frames one socket has queued in this turn. Made only for a socket that opted in;
 * sent at the end of the turn, or at once when it reaches {@linkcode MAX_BATCH_BYTES}.
 */
export class FrameBatch {
  /** Set once the socket is upgraded; nothing is batched before (frames wait in order). */
  socket: SocketLike | null = null;
  #text = "";
  #due = false;
  #meter: RouteMeter;
  /** UTF-8 bytes of what waits, newlines included (counted as each line is added). */
  #bytes = 0;

  /** A batch whose frames are counted on `meter` (default: counted nowhere). */
  constructor(meter: RouteMeter = new RouteMeter("")) {
    this.#meter = meter;
  }

  /** What waits to be sent, in UTF-8 bytes: counted with the socket's unsent bytes. */
  get pending(): number {
    return this.#bytes;
  }

  /** Queues one JSON text (no raw newline) for the end of the turn. */
  add(json: string): void {
    // A string concatenation is a rope in V8: flattened once, when the batch is sent.
    this.#text = this.#text === "" ? json : this.#text + "\n" + json;
    // A group's event is one string for every member: its length is measured once.
    this.#bytes += this.#meter.textBytes(json) + 1;
    if (this.#bytes >= MAX_BATCH_BYTES) this.flush();
    else if (!this.#due) {
      this.#due = true;
      flushAtEndOfTurn(this);
    }
  }

  /** Sends what waits as one frame (before a non-JSON frame, a close, or at the turn's end). */
  flush(): void {
    const text = this.#text;
    if (text === "") return;
    this.#text = "";
    const socket = this.socket;
    const bytes = this.#bytes - 1; // one newline fewer than lines
    this.#bytes = 0;
    if (socket !== null && socket.readyState === OPEN) {
      socket.send(text);
      this.#meter.sentBatch(bytes);
    }
  }

  /** Forgets what waits: the socket has closed. */
  discard(): void {
    this.#text = "";
    this.#bytes = 0;
  }

  /** Called by the turn's flush. */
  flushDue(): void {
    this.#due = false;
    this.flush();
  }
}

/**
 * Flushes closer together than this mean the server is busy: the next flush then waits for a
 * 0 ms timer instead of a microtask (see `flushAtEndOfTurn`).
 */
const BUSY_MS = 1;

// The one place of this module's shared state: the batches to send when the turn ends,
// whether that flush is scheduled (one for every socket, not one per socket), and when the
// last one ran.
const due: FrameBatch[] = [];
let scheduled = false;
let lastFlushAt = -Infinity;

// Idle, a flush is a microtask: the frame leaves in the turn it was made, with no added
// latency. Busy (the last flush ran under BUSY_MS ago), it is a 0 ms timer, which Deno runs
// 1-2 ms later, after the I/O that arrived meanwhile: every socket then gets one frame per
// timer tick instead of one per message. Measured in the bench's saturation of a room of 100:
// microtasks only, ~3 messages per frame at the limit and 1.7x raw Deno's deliveries/s; this,
// 14 per frame and over 2.7x, at +1-2 ms median latency under load and none when idle.
function flushAtEndOfTurn(batch: FrameBatch): void {
  due.push(batch);
  if (scheduled) return;
  scheduled = true;
  if (performance.now() - lastFlushAt < BUSY_MS) setTimeout(flushAll, 0);
  else queueMicrotask(flushAll);
}

function flushAll(): void {
  // A batch added while this runs (a send from inside a send) is at the end: flushed too.
  for (let i = 0; i < due.length; i++) {
    try {
      due[i].flushDue();
    } catch {
      // A socket that fails to send is closing: its close event does the cleanup.
    }
  }
  due.length = 0;
  scheduled = false;
  lastFlushAt = performance.now();
}
