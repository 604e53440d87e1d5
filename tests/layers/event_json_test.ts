import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  checkedEventJson,
  eventJson,
  freezeEvent,
  MAX_EVENT_DEPTH,
} from "../../layers/event_json.ts";

Deno.test("a frozen event is frozen all the way down, and its JSON is made once", () => {
  const event = freezeEvent({
    type: "presence.diff",
    joins: [{ username: "ann", meta: { n: 1 } }],
  });
  assertEquals(Object.isFrozen(event.joins[0].meta), true);
  assertThrows(() => (event.joins[0].meta as { n: number }).n = 2);
  assertEquals(eventJson(event), JSON.stringify(event));
  assertEquals(
    eventJson(event),
    '{"type":"presence.diff","joins":[{"username":"ann","meta":{"n":1}}]}',
  );
});

Deno.test("events of many shapes freeze alike; bytes inside are left as they are", () => {
  const bytes = new Uint8Array([1, 2]);
  const shapes = [
    { type: "a", x: 1 },
    { type: "b", list: [1, [2, { deep: true }]] },
    { offset: 3, epoch: "e", type: "c", when: bytes },
  ];
  for (const shape of shapes) freezeEvent(shape);
  assertEquals(shapes.every((shape) => Object.isFrozen(shape)), true);
  assertEquals(Object.isFrozen((shapes[1].list as unknown[])[1]), true);
  assertEquals(Object.isFrozen(bytes), false);
});

Deno.test("a value that was not frozen is serialised again on every call", () => {
  const value = { type: "count", n: 1 };
  assertEquals(eventJson(value), '{"type":"count","n":1}');
  value.n++;
  assertEquals(eventJson(value), '{"type":"count","n":2}');
});

Deno.test("an event with bytes inside is frozen but its JSON is made again: bytes can change", () => {
  const bytes = new Uint8Array([1]);
  const event = freezeEvent({ type: "blob", inner: { bytes } });
  assertEquals(Object.isFrozen(event.inner), true);
  assertEquals(eventJson(event), '{"type":"blob","inner":{"bytes":{"0":1}}}');
  bytes[0] = 2;
  assertEquals(eventJson(event), '{"type":"blob","inner":{"bytes":{"0":2}}}');
});

Deno.test("what is not plain data is refused, by its kind, and not remembered as frozen", () => {
  class Score {
    points = 1;
  }
  const refused: [unknown, string][] = [
    [{ type: "t", at: new Date(0) }, "Date"],
    [{ type: "t", seen: new Map() }, "Map"],
    [{ type: "t", list: [new Set()] }, "Set"],
    [{ type: "t", score: new Score() }, "Score"],
    [{ type: "t", callback: () => 1 }, "function"],
  ];
  for (const [event, kind] of refused) {
    const error = assertThrows(() => checkedEventJson(event as object), TypeError);
    assertStringIncludes(error.message, kind);
    assertStringIncludes(error.message, "not plain data");
    // Refused again on a second send: the first refusal left no mark that lets it through.
    assertThrows(() => checkedEventJson(event as object), TypeError);
  }
});

// `levels` objects and arrays, one inside the other, the event itself the first.
function nested(levels: number): Record<string, unknown> {
  let inner: unknown = "bottom";
  for (let i = 1; i < levels; i++) inner = i % 2 === 0 ? { inner } : [inner];
  return { type: "t", inner };
}

Deno.test("an event nested deeper than the bound is refused as bad data, not a stack overflow", () => {
  const deepest = nested(MAX_EVENT_DEPTH);
  assertEquals(JSON.parse(checkedEventJson(deepest)).type, "t");
  const error = assertThrows(() => checkedEventJson(nested(MAX_EVENT_DEPTH + 1)), TypeError);
  assertStringIncludes(error.message, `more than ${MAX_EVENT_DEPTH} deep`);
  // Far deeper, as a hostile body parses: still the same refusal.
  assertThrows(() => freezeEvent(nested(30_000)), TypeError);
});

Deno.test("an event that holds one frozen already is bound by its whole depth", () => {
  const sent = freezeEvent(nested(MAX_EVENT_DEPTH)); // as a layer froze it when it was sent
  // Sent on inside another event, one level deeper: over the bound.
  assertThrows(() => freezeEvent({ type: "relay", inner: sent }), TypeError, "deep");
  // Wrapped again and again, it stays refused: no frozen part lets the rest through.
  let relayed: Record<string, unknown> = { type: "relay", inner: freezeEvent(nested(60)) };
  for (let i = 0; i < 60; i++) relayed = { type: "relay", inner: relayed };
  assertThrows(() => freezeEvent(relayed), TypeError, "deep");
  // A frozen part that fits, fits.
  const small = freezeEvent(nested(3));
  assertEquals(JSON.parse(checkedEventJson({ type: "relay", inner: small })).inner.type, "t");
});

Deno.test("an event with bytes is refused for a JSON wire, and carried without JSON where bytes go", () => {
  const data = new Uint8Array(1024 * 1024); // a megabyte: its JSON would be ten times that
  assertThrows(() => checkedEventJson({ type: "blob", data }), TypeError, "base64");
  // A worker's job from Django on channels_redis: frozen, checked, but no JSON made for it.
  const carried = { type: "blob", data };
  assertEquals(checkedEventJson(carried, true), undefined);
  assertEquals(Object.isFrozen(carried), true);
  // Still checked for what has no JSON text, beside the bytes.
  assertThrows(() => checkedEventJson({ type: "b", n: 5n, data }, true), TypeError, "no JSON text");
  const cyclic: Record<string, unknown> = { type: "c", data };
  cyclic.self = cyclic;
  assertThrows(() => checkedEventJson(cyclic, true), TypeError, "no JSON text");
});
