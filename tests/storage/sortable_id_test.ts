import { assert, assertEquals } from "@std/assert";
import { sortableId } from "../../storage/store.ts";

Deno.test("sortableId starts with the time in base 36, 9 digits, as toString(36) writes it", () => {
  const split = 36 ** 5;
  const times = [0, 1, split - 1, split, split + 1, 1_764_783_000_000, 36 ** 9 - 1];
  for (let i = 0; i < 1000; i++) times.push(Math.floor(Math.random() * 36 ** 9));
  for (const time of times) {
    assertEquals(sortableId(time).slice(0, 9), time.toString(36).padStart(9, "0"), `at ${time}`);
  }
});

Deno.test("sortableId sorts by time, then by order within one millisecond", () => {
  const now = Date.now();
  const ids = [sortableId(now - 36 ** 5), sortableId(now), sortableId(now), sortableId(now + 1)];
  for (let i = 1; i < ids.length; i++) assert(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  assertEquals(new Set(ids).size, ids.length);
});
