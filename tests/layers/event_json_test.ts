import { assertEquals, assertThrows } from "@std/assert";
import { eventJson, freezeEvent } from "../../layers/event_json.ts";

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

Deno.test("events of many shapes freeze alike; what is not plain data is left as it is", () => {
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
