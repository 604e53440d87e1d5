/**
 * One JSON serialisation per event, however many sockets it goes to, with no cache that can
 * go stale: the layer freezes every event it delivers (deeply), and only a value frozen here
 * has its text remembered. A value that can still change is serialised on every call.
 */

// Keys are values this module froze, with everything inside them; their text once made.
const frozen = new WeakMap<object, string | undefined>();

/** Freezes `value` and every object and array inside it, so its JSON can be made once. */
export function freezeEvent<T>(value: T): T {
  if (typeof value !== "object" || value === null || frozen.has(value)) return value;
  if (!isPlain(value)) return value; // not JSON data (a typed array, a Date): left as it is
  for (const inner of Object.values(value)) freezeEvent(inner);
  Object.freeze(value);
  frozen.set(value, undefined);
  return value;
}

/** `JSON.stringify(value)`, made once for a value frozen by {@linkcode freezeEvent}. */
export function eventJson(value: unknown): string {
  if (typeof value !== "object" || value === null || !frozen.has(value)) {
    return JSON.stringify(value);
  }
  let text = frozen.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    frozen.set(value, text);
  }
  return text;
}

function isPlain(value: object): boolean {
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
