/**
 * The checks on what a consumer asks its connection to send or close with (`_connection.ts`),
 * made before anything is queued, with error messages that say what was passed.
 */
import { isSendableCloseCode } from "./close_codes.ts";
import { eventJson } from "../layers/event_json.ts";

/** Throws a `TypeError` unless `data` is a frame `send` can take: a string or a Uint8Array. */
export function checkFrame(data: unknown): asserts data is string | Uint8Array {
  // Checked before anything is queued: a bad frame found when the socket opens would throw
  // from its `open` event, and an exception there ends the whole process.
  if (typeof data !== "string" && !(data instanceof Uint8Array)) {
    throw new TypeError(`send takes a string or a Uint8Array, not ${describeValue(data)}`);
  }
}

/** The JSON text `sendJson` sends for `value`; a `TypeError` if it has none. */
export function jsonFrame(value: unknown): string {
  // A layer event goes to every member of its group: being frozen, it is serialised once.
  const text: string | undefined = eventJson(value);
  if (typeof text !== "string") {
    throw new TypeError(`sendJson cannot send ${describeValue(value)}: it has no JSON text`);
  }
  return text;
}

/**
 * What a frame waiting to be sent counts for against `maxBufferedBytes` and
 * `Connection.sendCapacity`: its length (a string's UTF-16 units, near enough its bytes) and
 * what holding it costs besides. A consumer about to send many frames at once (a replay) sums
 * this over them to see whether they fit.
 */
export function frameBytes(data: string | Uint8Array | { json: string }): number {
  const length = typeof data === "string"
    ? data.length
    : data instanceof Uint8Array
    ? data.byteLength
    : data.json.length;
  return length + FRAME_OVERHEAD_BYTES;
}

// A queued frame's own object and its slot: many tiny frames are bounded too, not only big ones.
const FRAME_OVERHEAD_BYTES = 32;

/** Throws a `RangeError` unless a close frame may carry `code`. */
export function checkCloseCode(code: number): void {
  if (!isSendableCloseCode(code)) {
    throw new RangeError(
      `Close code ${code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999`,
    );
  }
}

/** What a value is, for an error message: `undefined`, `a function`, `an object`. */
function describeValue(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  const type = typeof value;
  return type === "object" ? "an object" : `a ${type}`;
}
