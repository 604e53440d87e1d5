/**
 * The counts of one WebSocket route, and why a handshake was refused: the plain numbers the
 * hot paths add to. Each route gets its {@linkcode RouteMeter} when the route table is built;
 * its connections count frames, bytes, drops and closes on it, and the metrics read it at
 * scrape time.
 */
import { CloseCode } from "./close_codes.ts";
import { utf8Length } from "../telemetry/utf8.ts";

/** Why a WebSocket handshake was refused, as the metrics label it. */
export type RefusalReason =
  | "bad_handshake"
  | "origin"
  | "token"
  | "name_conflict"
  | "login_required"
  | "cap_address"
  | "cap_user"
  | "consumer"
  | "consumer_error"
  | "unavailable"
  | "client_left";

/** Every {@linkcode RefusalReason}, in the order the handshake checks them. */
export const REFUSAL_REASONS: readonly RefusalReason[] = [
  "bad_handshake",
  "origin",
  "token",
  "name_conflict",
  "login_required",
  "cap_address",
  "cap_user",
  "consumer",
  "consumer_error",
  "unavailable",
  "client_left",
];

// Close codes counted by their number; any other is counted as "other" (a client may send
// any code from 3000 to 4999: labelling each would make a series per code).
const NAMED_CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005, 1006]);

/**
 * The counts of one WebSocket route, shared by its connections: plain numbers a connection
 * adds to where it already handles a frame. Read at scrape time.
 */
export class RouteMeter {
  /** The route's pattern, e.g. `/ws/chat/:room/` (the label; never the request's path). */
  readonly route: string;
  /** Sockets open now. */
  open = 0;
  /** Handshakes answered with 101. */
  accepted = 0;
  /** Frames received from clients, and their bytes. */
  framesIn = 0;
  /** Bytes of the frames received (UTF-8 for text). */
  bytesIn = 0;
  /** Frames sent to clients (a batched frame counts once). */
  framesOut = 0;
  /** Bytes of the frames sent (UTF-8 for text). */
  bytesOut = 0;
  /** Events refused because the socket had too much unsent. */
  congested = 0;
  /** Events refused because the connection's queue was full. */
  queueFull = 0;
  /** Frames dropped because more were sent before the socket opened than its queue holds. */
  beforeOpen = 0;
  /** Sockets upgraded that never opened: their clients left during the upgrade. */
  neverOpened = 0;
  /** Handshakes refused, by reason. */
  readonly refused: Record<RefusalReason, number> = Object.fromEntries(
    REFUSAL_REASONS.map((reason) => [reason, 0]),
  ) as Record<RefusalReason, number>;
  /** Closes by code (a number, or "other"). */
  readonly closes: Map<string, number> = new Map();
  // A group's event goes to every member as the same string: its length is measured once.
  #lastText = "";
  #lastBytes = 0;

  /** The meter of the route `route` (a pattern). */
  constructor(route: string) {
    this.route = route;
  }

  /** Counts a frame from a client. */
  received(data: string | ArrayBuffer | Blob): void {
    this.framesIn++;
    this.bytesIn += typeof data === "string"
      ? utf8Length(data)
      : data instanceof Blob
      ? data.size
      : data.byteLength;
  }

  /** Counts a frame to a client. */
  sent(data: string | Uint8Array): void {
    this.framesOut++;
    this.bytesOut += typeof data === "string" ? this.textBytes(data) : data.byteLength;
  }

  /** Counts a batched frame of `bytes` (its lines were measured by `textBytes` as added). */
  sentBatch(bytes: number): void {
    this.framesOut++;
    this.bytesOut += bytes;
  }

  /** UTF-8 bytes of `text`; the same string as last time is not measured again. */
  textBytes(text: string): number {
    if (text !== this.#lastText) {
      this.#lastText = text;
      this.#lastBytes = utf8Length(text);
    }
    return this.#lastBytes;
  }

  /** Counts an event a connection refused: its socket was congested, or its queue full. */
  dropped(congested: boolean): void {
    if (congested) this.congested++;
    else this.queueFull++;
  }

  /** Counts an open socket that closed with `code`. */
  closed(code: number): void {
    this.open--;
    const label = NAMED_CLOSE_CODES.has(code) ? String(code) : "other";
    this.closes.set(label, (this.closes.get(label) ?? 0) + 1);
  }
}
