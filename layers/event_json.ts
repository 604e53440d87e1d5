/**
 * One JSON serialisation per event, however many sockets it goes to, with no cache that can
 * go stale: the layer freezes every event it delivers (deeply), and only a value frozen here,
 * with everything inside it, has its text remembered. A value that can still change (bytes
 * inside it) is serialised on every call.
 *
 * Events are plain data, as Django Channels' are (they must survive msgpack): objects, arrays,
 * strings, numbers, booleans, null, and bytes as a `Uint8Array`. Anything else (a `Date`, a
 * `Map`, a class's instance, a function; `NaN`, `Infinity`, a Symbol, or `undefined` in an
 * array, which JSON writes as `null` or leaves out) is refused at its sender, since a member in
 * another process would get something other than a member in this one. A property whose value
 * is `undefined` is left out by JSON, and reads `undefined` in every process: it passes.
 */

// Keys are values this module froze, with everything inside them; their text once made (null
// until then: one lookup tells a frozen value from another and finds its text).
const frozen = new WeakMap<object, string | null>();
// How many levels of objects and arrays a frozen value spans, for one with any inside it (none
// is kept for one without, most events: the height 1 costs them nothing): a frozen value put
// inside another event must still fit the bound there.
const heights = new WeakMap<object, number>();
// The value serialised last: a group's members get one event in a row, so most calls are
// answered by this comparison, without a lookup. Only a frozen value is remembered.
let lastValue: object | null = null;
let lastText = "";

/**
 * How deep objects and arrays may nest in an event. Deeper is refused with a `TypeError` (its
 * sender's fault) rather than overflowing the stack here, in JSON or in msgpack.
 */
export const MAX_EVENT_DEPTH = 100;

/** Freezes `value` and every object and array inside it, so its JSON can be made once. */
export function freezeEvent<T>(value: T): T {
  return freezeAt(value, 0, false);
}

/**
 * Freezes `event` as {@linkcode freezeEvent} does, at its sender: what JSON would not give back
 * as it is (`NaN`, `Infinity`, a Symbol, `undefined` in an array) is refused with a `TypeError`,
 * as anything else that is not plain data is. For a stream's publish, which keeps the event's
 * JSON; a layer's `groupSend` checks with {@linkcode checkedEventJson}.
 */
export function freezeSentEvent<T extends object>(event: T): T {
  return freezeAt(event, 0, true);
}

// `depth`: how many objects and arrays `value` is inside. `sent`: a sender's event, whose
// numbers, Symbols and `undefined`s are checked (an event decoded from a wire is taken as is).
function freezeAt<T>(value: T, depth: number, sent: boolean): T {
  if (typeof value !== "object" || value === null) return value;
  if (value === lastValue || frozen.has(value)) {
    // Frozen already, as an event of its own: inside this one it must still fit the bound.
    if (depth > 0 && depth + (heights.get(value) ?? 1) > MAX_EVENT_DEPTH) tooDeep();
    return value;
  }
  if (!isPlain(value)) {
    checkBytes(value);
    return value; // bytes: left as is, and never remembered (they can change)
  }
  markAndFreeze(value, depth, sent);
  return value;
}

// Marked before its insides: a value that contains itself is then frozen once, not forever
// (its JSON fails later, with JSON's own "circular structure" error). Unmarked again when
// something inside may change (bytes), or is refused.
function markAndFreeze(value: object, depth: number, sent: boolean): boolean {
  if (depth >= MAX_EVENT_DEPTH) tooDeep();
  frozen.set(value, null);
  let unchanging;
  try {
    unchanging = freezeInside(value, depth, sent);
  } catch (error) {
    frozen.delete(value);
    throw error;
  }
  if (!unchanging) frozen.delete(value);
  return unchanging;
}

/**
 * Freezes `value` as {@linkcode freezeEvent} does and returns its JSON, made now: for the
 * publisher of a new event, which needs its text at once (a stream keeps it), so that its
 * members' frames reuse it.
 */
export function frozenEventJson(value: Record<string, unknown>): string {
  if (value === lastValue) return lastText;
  if (frozen.has(value) || !isPlain(value)) return eventJson(value);
  if (!markAndFreeze(value, 0, true)) return JSON.stringify(value);
  const text = JSON.stringify(value);
  frozen.set(value, text);
  lastValue = value;
  lastText = text;
  return text;
}

// Freezes `value` and what is inside it; false when something inside can still change.
function freezeInside(value: object, depth: number, sent: boolean): boolean {
  // Not `for...in`: its keyed loads are specialised to one object shape, and events of many
  // shapes (chat messages, presence diffs, acks) pass here, so V8 deoptimised and recompiled
  // this function again and again under load (25 times in 15 s of the rooms benchmark).
  const inner = Object.values(value);
  let unchanging = true;
  let below = 0; // the height of the tallest object or array inside
  for (let i = 0; i < inner.length; i++) {
    const item = inner[i];
    if (typeof item === "object" && item !== null) {
      freezeAt(item, depth + 1, sent);
      if (!frozen.has(item)) unchanging = false;
      below = Math.max(below, heights.get(item) ?? 1);
    } else if (typeof item === "function") {
      throw new TypeError(`${NOT_DATA}: it holds a function`);
    } else if (sent && typeof item !== "string" && typeof item !== "boolean") {
      checkScalar(item, value);
    }
  }
  // An array's empty slots (`[1, , 3]`, `new Array(3)`), which `Object.values` skips: JSON
  // writes each as null, where a member in this process reads undefined.
  if (sent && Array.isArray(value) && inner.length !== value.length) {
    throw new TypeError(
      `${NOT_DATA}: it holds an array with empty slots, which JSON writes as null`,
    );
  }
  if (below > 0) heights.set(value, below + 1);
  Object.freeze(value);
  return unchanging;
}

// A number JSON writes as it is, or `null` (kept). `item - item` is 0 for every finite number
// alone: NaN and the infinities give NaN.
function checkScalar(item: unknown, inside: object): void {
  if (typeof item === "number") {
    if (item - item !== 0) {
      throw new TypeError(`${NOT_DATA}: it holds ${item}, which JSON writes as null`);
    }
  } else if (typeof item === "symbol") {
    throw new TypeError(`${NOT_DATA}: it holds a Symbol, which JSON leaves out`);
  } else if (item === undefined && Array.isArray(inside)) {
    throw new TypeError(`${NOT_DATA}: it holds undefined in an array, which JSON writes as null`);
  }
}

function tooDeep(): never {
  throw new TypeError(`The event nests objects or arrays more than ${MAX_EVENT_DEPTH} deep`);
}

const NOT_DATA = "The event is not plain data (objects, arrays, strings, numbers, booleans, " +
  "null, bytes as Uint8Array)";

/**
 * True when `value`, once {@linkcode freezeEvent} froze it, holds bytes somewhere inside: only
 * a value with nothing that can change is remembered as frozen.
 */
export function holdsBytes(value: object): boolean {
  // The value serialised last has its text, so nothing inside it can change: answered without
  // a lookup for the event a stream just made (asked again by the layer that hands it on).
  return value !== lastValue && !frozen.has(value);
}

/** Why an event with bytes inside is refused where it would not arrive as sent. */
export const BYTES_REFUSED =
  "The event holds bytes (a Uint8Array), which JSON cannot carry: send them as base64 text";

function checkBytes(value: object): void {
  if (value instanceof Uint8Array) return;
  const kind = value.constructor?.name ?? "object without a prototype";
  throw new TypeError(`${NOT_DATA}: it holds a ${kind}; send its JSON form instead`);
}

/**
 * Freezes `event` as {@linkcode freezeEvent} does and makes its JSON now, for a layer about to
 * hand it on: an event with no JSON text (a BigInt inside, a cycle) is refused here, at its
 * sender, with a `TypeError`, rather than failing at every member that sends it on. So is one
 * with bytes inside, unless `carriesBytes` (a layer whose wire keeps them, as channels_redis'
 * msgpack does): on a JSON wire a member in another process would get `{"0": …}` instead. Such
 * an event, carried, gets no JSON (`undefined`): it could not be remembered, since bytes can
 * change, and it would cost ten characters a byte on every send.
 */
export function checkedEventJson(event: object, carriesBytes?: false): string;
/** As above, for a layer that carries bytes: `undefined` for an event with bytes inside. */
export function checkedEventJson(event: object, carriesBytes: boolean): string | undefined;
export function checkedEventJson(event: object, carriesBytes = false): string | undefined {
  freezeSentEvent(event);
  if (holdsBytes(event)) {
    if (!carriesBytes) {
      throw new TypeError(`${BYTES_REFUSED} (of the layers, only channels_redis carries bytes)`);
    }
    // Checked all the same (a BigInt, a cycle), with the bytes left out of the text.
    try {
      jsonWithoutBytes(event);
    } catch (error) {
      throw new TypeError(`The event has no JSON text: ${(error as Error).message}`);
    }
    return undefined;
  }
  try {
    return eventJson(event);
  } catch (error) {
    throw new TypeError(`The event has no JSON text: ${(error as Error).message}`);
  }
}

/** `JSON.stringify(value)`, made once for a value frozen by {@linkcode freezeEvent}. */
export function eventJson(value: unknown): string {
  if (value === lastValue) return lastText;
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  let text = frozen.get(value);
  if (text === undefined) return JSON.stringify(value); // not frozen: it may change
  if (text === null) {
    text = JSON.stringify(value);
    frozen.set(value, text);
  }
  lastValue = value;
  lastText = text;
  return text;
}

function isPlain(value: object): boolean {
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * `value`'s JSON with each `Uint8Array` inside written as its length (`"bytes:5"`), not as
 * every byte: for a look at an event with bytes (a check, a hash) that must not cost ten
 * characters a byte. The same bytes give the same text in every process.
 */
export function jsonWithoutBytes(value: unknown): string {
  return JSON.stringify(value, bytesAsLength);
}

function bytesAsLength(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? `bytes:${value.byteLength}` : value;
}
