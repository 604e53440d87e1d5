/**
 * A consumer's hooks under names that are not the framework's (Channels' `receive_json`,
 * `websocket_receive`, a browser's `onMessage`, a typo: `conect`): they would never be called,
 * and the frames meant for them would go nowhere without a word. Told once per consumer.
 */
import { log } from "../telemetry/log.ts";
import { withinOneEdit } from "./_within_one_edit.ts";

/** A consumer's hooks: the names the framework calls. */
export const HOOKS: readonly string[] = [
  "connect",
  "receive",
  "receiveJson",
  "receiveBytes",
  "events",
  "drained",
  "disconnect",
];

// A name as it is likely meant: case and underscores aside, with Channels' `websocket_` and a
// DOM handler's `on` taken off.
function meant(name: string): string {
  const lower = name.toLowerCase().replaceAll("_", "");
  const bare = lower.replace(/^(websocket|on)(?=.)/, "");
  // Only after an `on`: a consumer's own `close()` or `message()` is no typo.
  return bare !== lower ? DOM_NAMES[bare] ?? bare : bare;
}

// `onmessage`, `onopen`, `onclose` as a WebSocket names them (without their `on`).
const DOM_NAMES: Record<string, string> = {
  message: "receive",
  open: "connect",
  close: "disconnect",
};

const BY_MEANING = new Map(HOOKS.map((hook) => [meant(hook), hook]));

/** The hook `name` was likely meant to be, when it is not one itself; else `null`. */
export function hookMeant(name: string): string | null {
  if (HOOKS.includes(name)) return null;
  const key = meant(name);
  const exact = BY_MEANING.get(key);
  if (exact !== undefined) return exact;
  // One letter off (`conect`, `recieve`), for names long enough not to match by chance. Not a
  // hook's name with more after it: `received()`, `connects()` are helpers of one's own.
  if (key.length < 6) return null;
  for (const [hookKey, hook] of BY_MEANING) {
    if (withinOneEdit(key, hookKey) && !key.startsWith(hookKey)) return hook;
  }
  return null;
}

/**
 * What is said of a consumer's hooks under names the framework never calls (`receive_json`), by
 * the socket (by the connection while it has none): a communicator that waits in vain for a
 * frame says so, where the log's warning is silenced in a test.
 */
export const misnamedHooks: WeakMap<object, string> = new WeakMap();

// The consumers already looked at, and what was said of each (null: nothing): a route's
// consumer builds the same hooks for every socket.
const checked = new WeakMap<object, string | null>();

/**
 * Warns once per consumer of the names in `hooks` that look like hooks but are not, and returns
 * what was said of them (for a communicator to tell), or null.
 */
export function warnMisnamedHooks(consumer: object, hooks: object, path: string): string | null {
  const said = checked.get(consumer);
  if (said !== undefined) return said;
  const sentences: string[] = [];
  for (const [name, isMap] of candidateNames(hooks)) {
    // `event`: too short for the one-letter rule, and only a map of handlers is taken for it.
    const hook = isMap && name === "event" ? "events" : hookMeant(name);
    // With the real hook too, the other name is the consumer's own helper (a `close()`).
    if (hook === null || hook in hooks) continue;
    const sentence = `The consumer of ${path} has \`${name}\`, which is no hook and is never ` +
      `called: did you mean \`${hook}\`?`;
    log.warn(sentence);
    sentences.push(sentence);
  }
  const text = sentences.length === 0 ? null : sentences.join(" ");
  checked.set(consumer, text);
  return text;
}

// Its own functions and its class's methods, up to Object's, each with false; and its fields
// that hold a plain object (an `events` map, misnamed), with true. Another field (`received =
// 0`) is no hook meant, and a getter is not called to find out.
function candidateNames(hooks: object): [name: string, isMap: boolean][] {
  const names = new Map<string, boolean>();
  for (
    let layer: object | null = hooks;
    layer !== null && layer !== Object.prototype;
    layer = Object.getPrototypeOf(layer)
  ) {
    for (const [name, property] of Object.entries(Object.getOwnPropertyDescriptors(layer))) {
      if (name === "constructor" || names.has(name)) continue;
      const value = property.value;
      if (typeof value === "function") names.set(name, false);
      else if (isPlainObject(value)) names.set(name, true);
    }
  }
  return [...names];
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
