import { assertEquals } from "@std/assert";
import {
  decodeGroupMessage,
  encodeGroupMessage,
  groupMessageOpening,
} from "../../layers/redis_wire.ts";

Deno.test("redis wire: a group message opens with its origin, so its publisher knows it unparsed", () => {
  const text = encodeGroupMessage({ type: "t", n: 1 }, "p1");
  assertEquals(text.startsWith(groupMessageOpening("p1")), true);
  assertEquals(text.startsWith(groupMessageOpening("p2")), false);
  assertEquals(decodeGroupMessage(text), { event: { type: "t", n: 1 }, origin: "p1" });
});

Deno.test("redis wire: an event's own origin key does not replace the publisher's", () => {
  const text = encodeGroupMessage({ type: "t", __origin: "forged" }, "p1");
  assertEquals(decodeGroupMessage(text), { event: { type: "t" }, origin: "p1" });
});

Deno.test("redis wire: a message without an origin is the event itself", () => {
  assertEquals(encodeGroupMessage({ type: "t" }), '{"type":"t"}');
  assertEquals(groupMessageOpening() + '"type":"t"}', '{"type":"t"}');
  assertEquals(decodeGroupMessage('{"type":"t"}'), { event: { type: "t" }, origin: null });
});
