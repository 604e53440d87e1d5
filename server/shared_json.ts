/**
 * JSON text of a value that many consumers of one event serialise in turn: a group send hands
 * the same object to every member, and chat history then stores it. The last value's text is
 * kept, so all of them share one `JSON.stringify`. Values must not change once sent.
 */

let lastValue: unknown = undefined;
let lastText = "";

/** `JSON.stringify(value)`, reused when `value` is the object serialised last. */
export function sharedJson(value: unknown): string {
  if (value !== lastValue || typeof value !== "object" || value === null) {
    lastText = JSON.stringify(value);
    lastValue = value;
  }
  return lastText;
}
