/**
 * Whether two values are the same as a store keeps them: a compare-and-set
 * (`Store.replace`) compares what it was given with what it reads, and the two may
 * have been written with their fields in another order (by another process, or another
 * version), which a comparison of JSON texts would take for a change.
 */
/**
 * Equal field by field, in any order, for the values both stores keep: JSON's, `Date`,
 * `Uint8Array` and `bigint`. A field set to `undefined` counts as absent (JSON drops it).
 */
export function sameStoredValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length &&
      a.every((byte, i) => byte === b[i]);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const fieldsOf = (value: object) =>
    Object.entries(value).filter(([, field]) => field !== undefined);
  const fields = fieldsOf(a);
  const others = new Map(fieldsOf(b));
  return fields.length === others.size &&
    fields.every(([name, field]) => others.has(name) && sameStoredValue(field, others.get(name)));
}
