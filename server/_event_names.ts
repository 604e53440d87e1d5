/**
 * Which handler of an `events` object takes an event of a given type: the one under the type
 * itself, else the one whose key names the same Channels method, dots read as underscores. In
 * Channels `"notify.user"` and `"notify_user"` both reach `notify_user`; a consumer or worker
 * moved here must not lose the events Django's code sends in the other form.
 */

/** The own key of `events` whose handler takes events of `type`, if one does. */
export function eventHandlerKey(events: object, type: string): string | undefined {
  // Own keys only: an event typed "constructor" or "toString" must not reach Object's.
  if (Object.hasOwn(events, type)) return type;
  const method = type.replaceAll(".", "_");
  for (const key of Object.keys(events)) {
    if (key.replaceAll(".", "_") === method) return key;
  }
  return undefined;
}
