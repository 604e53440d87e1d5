/**
 * How `replace` compares what it was given with what it read: as the stores keep values, so
 * that Redis (JSON) and Deno KV (structured clone) answer alike.
 */
import { assert, assertFalse } from "@std/assert";
import { sameStoredValue } from "../../storage/_same_value.ts";

Deno.test("fields compare in any order, and a field set to undefined counts as absent", () => {
  assert(sameStoredValue({ a: 1, b: { c: [2] } }, { b: { c: [2] }, a: 1 }));
  assert(sameStoredValue({ a: 1, gone: undefined }, { a: 1 }));
  assertFalse(sameStoredValue({ a: 1 }, { a: 1, b: null }));
  assertFalse(sameStoredValue({ a: 1 }, { a: "1" }));
  assert(sameStoredValue(Object.assign(Object.create(null), { a: 1 }), { a: 1 }));
});

Deno.test("NaN equals NaN, and -0 equals 0 (JSON writes it as 0)", () => {
  assert(sameStoredValue(NaN, NaN));
  assert(sameStoredValue({ n: NaN }, { n: NaN }));
  assert(sameStoredValue(-0, 0));
  assert(sameStoredValue({ n: -0 }, { n: 0 }));
  assertFalse(sameStoredValue(NaN, null), "JSON writes NaN as null, but null is not NaN");
  assertFalse(sameStoredValue(1, 1n));
});

Deno.test("arrays must be as long, and a hole or undefined in one counts as null", () => {
  assertFalse(sameStoredValue([1], [1, 2]));
  assertFalse(sameStoredValue([1], [1, undefined]), "JSON writes [1,null]");
  assert(sameStoredValue([1, undefined, 3], [1, null, 3]));
  // deno-lint-ignore no-sparse-arrays
  assert(sameStoredValue([1, , 3], [1, null, 3]));
  // deno-lint-ignore no-sparse-arrays
  assert(sameStoredValue([1, , 3], [1, undefined, 3]));
  assertFalse(sameStoredValue([1, 0, 3], [1, null, 3]));
  assertFalse(sameStoredValue({ 0: 1 }, [1]), "an object is not an array");
});

Deno.test("dates, bytes and bigints compare by what they hold", () => {
  const at = "2026-01-02T03:04:05.000Z";
  assert(sameStoredValue(new Date(at), new Date(at)));
  assertFalse(sameStoredValue(new Date(at), new Date(0)));
  assertFalse(sameStoredValue(new Date(at), at));
  assert(sameStoredValue(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assertFalse(sameStoredValue(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assertFalse(sameStoredValue(new Uint8Array([1]), [1]));
  assert(sameStoredValue(12n, 12n));
});

Deno.test("other objects are the same only as themselves, not by their (absent) own fields", () => {
  const others = [
    new Map([["a", 1]]),
    new Set([1]),
    /a/,
    new ArrayBuffer(2),
    new Uint16Array([1]),
    new (class Point {})(),
  ];
  for (const value of others) {
    assert(sameStoredValue(value, value));
    assertFalse(sameStoredValue(value, {}), String(value));
    assertFalse(sameStoredValue({}, value), String(value));
  }
  assertFalse(sameStoredValue(new Map([["a", 1]]), new Map([["b", 2]])));
  assertFalse(sameStoredValue(new Set([1]), new Set([2])));
  assertFalse(sameStoredValue(/a/, /b/));
});
