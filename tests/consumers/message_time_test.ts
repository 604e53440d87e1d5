import { assertEquals, assertThrows } from "@std/assert";
import { isoTime } from "../../consumers/message_time.ts";

Deno.test("a chat message's time reads as toISOString writes it, within a second and across them", () => {
  const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990);
  // Each millisecond over a new year's midnight, then back in time, then forward again.
  const times = [];
  for (let ms = start; ms < start + 2_100; ms++) times.push(ms);
  times.push(start - 86_400_000, start + 5, start - 1, 0, 999, 1000, -1, -1000, -1001);
  for (const ms of times) assertEquals(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
});

Deno.test("a chat message's time outside the usual years, or with a fraction of a millisecond, reads as toISOString's", () => {
  const times = [
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(10000, 0, 1),
    Date.UTC(10000, 0, 1) + 1,
    Date.UTC(-1, 0, 1),
    Date.UTC(0, 0, 1) - 1,
    8.64e15,
    -8.64e15,
    1_700_000_000_000.5,
    1_700_000_000_000.25,
  ];
  for (const ms of times) {
    assertEquals(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
    assertEquals(isoTime(ms), new Date(ms).toISOString(), `again at ${ms}`);
  }
});

Deno.test("a time that is none is refused as toISOString refuses it", () => {
  for (const ms of [Number.NaN, Infinity, 8.64e15 + 1]) assertThrows(() => isoTime(ms), RangeError);
});
