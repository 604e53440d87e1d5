/**
 * Whether two values are the same as a store keeps them: a compare-and-set
 * (`Store.replace`) compares what it was given with what it reads, and the two may
 * have been written with their fields in another order (by another process, or another
 * version), which a comparison of JSON texts would take for a change.
 */
/**
 * Equal as the stores keep them, for the values both keep: JSON's, `Date`, `Uint8Array` and
 * `bigint`. Where Redis (JSON) and Deno KV (structured clone) give a value back differently, it
 * is compared as JSON writes it, so both stores answer alike:
 * - fields in any order; a field set to `undefined` counts as absent (JSON drops it);
 * - in an array, a hole or `undefined` counts as `null` (JSON writes `null`, Deno KV keeps
 *   them), and the lengths must match;
 * - `-0` equals `0` (JSON writes `0`: a `-0` written reads back as `0` from Redis and as `-0`
 *   from Deno KV, and a replace over what was written must find it on both);
 * - `NaN` equals `NaN`, as Deno KV keeps it (JSON writes it as `null`, which stays unequal: a
 *   store is not asked to keep numbers JSON has not);
 * - any other object (`Map`, `Set`, `RegExp`, `ArrayBuffer`, a class's instance) is the same
 *   only as itself: the stores do not keep what is in it alike, and telling two apart by their
 *   own fields (which they have none of) would take any two for the same.
 */
export function sameStoredValue(a: unknown, b: unknown): boolean {
  if (a === b) return true; // `-0` and `0` too
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && sameStoredValue(a.getTime(), b.getTime());
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length &&
      a.every((byte, i) => byte === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      Array.from(a, (item, i) => sameStoredValue(item ?? null, b[i] ?? null)).every(Boolean);
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const fieldsOf = (value: object) =>
    Object.entries(value).filter(([, field]) => field !== undefined);
  const fields = fieldsOf(a);
  const others = new Map(fieldsOf(b));
  return fields.length === others.size &&
    fields.every(([name, field]) => others.has(name) && sameStoredValue(field, others.get(name)));
}

// An object made by a literal (or `JSON.parse`, or with no prototype): the kind whose own fields
// are all it holds.
function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
