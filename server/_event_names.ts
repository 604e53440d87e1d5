/**
 * Which handler of an `events` object takes an event of a given type: the one under the type
 * itself, else the one whose key names the same Channels method, dots read as underscores. In
 * Channels `"notify.user"` and `"notify_user"` both reach `notify_user`; a consumer or worker
 * moved here must not lose the events Django's code sends in the other form.
 */

import { log, quoteClipped } from "../telemetry/log.ts";
import { HOOKS } from "./_hook_names.ts";

/** The own key of `events` whose handler takes events of `type`, if one does. */
export function eventHandlerKey(events: object, type: string): string | undefined {
  // Own keys only: an event typed "constructor" or "toString" must not reach Object's.
  if (Object.hasOwn(events, type)) return type;
  const method = type.replaceAll(".", "_");
  // Another key reads as `method` only where one has a dot and the other an underscore: a type
  // whose method name has no underscore (an unhandled "ping") costs no look at the keys.
  if (!method.includes("_")) return undefined;
  const keys = Object.keys(events).filter((key) => key.replaceAll(".", "_") === method);
  if (keys.length > 1) warnAmbiguous(events, type, keys);
  return keys[0];
}

// Events objects warned about already: one line per object, not one per event.
const warnedAmbiguous = new WeakSet<object>();

// Two keys that Channels would name one method ("a.b_c" and "a_b.c"): the first in the object
// takes such an event, which depends on the order the keys were written in. Said once.
function warnAmbiguous(events: object, type: string, keys: string[]): void {
  if (warnedAmbiguous.has(events)) return;
  warnedAmbiguous.add(events);
  log.warn(
    `Events ${keys.map((key) => JSON.stringify(key)).join(" and ")} are one handler name in ` +
      `Channels (dots read as underscores): a ${quoteClipped(type)} event goes to the first, ` +
      `${JSON.stringify(keys[0])}. Give it a handler under its own type, or rename one`,
  );
}

/**
 * Where a handler for events of `type` was most likely written instead of the `events` map, as
 * a clause to add to "No handler for … events", else "": `events` given as a function, or a
 * method of the consumer's own named as Channels names it (`poll_update` beside `connect`).
 */
export function handlerMisplaced(hooks: object, type: string): string {
  const events = (hooks as { events?: unknown }).events;
  const map = `\`events: { ${JSON.stringify(type)}: (event) => … }\``;
  if (typeof events === "function") {
    return ` (\`events\` is a function; it is a map of handlers by type: ${map})`;
  }
  for (const name of new Set([type, type.replaceAll(".", "_")])) {
    // A hook is never an event handler, whatever an event's type.
    if (HOOKS.includes(name) || name === "constructor" || !hasFunction(hooks, name)) continue;
    return ` (the consumer's \`${name}\` is no handler: handlers go in its \`events\` map, ${map})`;
  }
  return "";
}

// Whether `object` or its class (up to Object's) has a function under `name`, no getter called.
function hasFunction(object: object, name: string): boolean {
  for (
    let layer: object | null = object;
    layer !== null && layer !== Object.prototype;
    layer = Object.getPrototypeOf(layer)
  ) {
    const property = Object.getOwnPropertyDescriptor(layer, name);
    if (property !== undefined) return typeof property.value === "function";
  }
  return false;
}
