/**
 * A consumer's hooks under names that are not the framework's (Channels' `receive_json`,
 * `websocket_receive`, a browser's `onMessage`, a typo: `conect`): they would never be called,
 * and the frames meant for them would go nowhere without a word. Told once per consumer.
 */
import { log } from "../telemetry/log.ts";
import { withinOneEdit } from "./_within_one_edit.ts";

const HOOKS = [
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

// The consumers already looked at: a route's consumer builds the same hooks for every socket.
const checked = new WeakSet<object>();

/** Warns once per consumer of the names in `hooks` that look like hooks but are not. */
export function warnMisnamedHooks(consumer: object, hooks: object, path: string): void {
  if (checked.has(consumer)) return;
  checked.add(consumer);
  for (const name of functionNames(hooks)) {
    const hook = hookMeant(name);
    // With the real hook too, the other name is the consumer's own helper (a `close()`).
    if (hook === null || hook in hooks) continue;
    log.warn(
      `The consumer of ${path} has \`${name}\`, which is no hook and is never called: ` +
        `did you mean \`${hook}\`?`,
    );
  }
}

// Its own functions and its class's methods, up to Object's: a field (`received = 0`) is no
// hook meant, and a getter is not called to find out.
function functionNames(hooks: object): string[] {
  const names = new Set<string>();
  for (
    let layer: object | null = hooks;
    layer !== null && layer !== Object.prototype;
    layer = Object.getPrototypeOf(layer)
  ) {
    for (const [name, property] of Object.entries(Object.getOwnPropertyDescriptors(layer))) {
      if (name !== "constructor" && typeof property.value === "function") names.add(name);
    }
  }
  return [...names];
}
