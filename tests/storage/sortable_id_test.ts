import { assert, assertEquals, assertThrows } from "@std/assert";
import { sortableId } from "../../storage/store.ts";

// Ids never go back in time within a process, so each test here takes times later than the
// tests before it, and the largest time comes last.

Deno.test("sortableId starts with the time in base 36, 9 digits, as toString(36) writes it", () => {
  const split = 36 ** 5;
  const times = [0, 1, split - 1, split, split + 1, 1_764_783_000_000];
  const before = Date.now() - 36 ** 6; // below the times of the tests after this one
  for (let i = 0; i < 1000; i++) times.push(Math.floor(Math.random() * before));
  times.sort((a, b) => a - b);
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

Deno.test("sortableId: a clock stepped back gives no id twice, and each id sorts after the last", () => {
  const now = Date.now() + 3_600_000; // an hour no other test of this process reaches
  const ids = [
    sortableId(now),
    sortableId(now - 500), // NTP steps the clock back half a second
    sortableId(now - 499),
    sortableId(now), // and it reads the first id's millisecond again
    sortableId(now + 1),
  ];
  assertEquals(new Set(ids).size, ids.length, `${ids}`);
  for (let i = 1; i < ids.length; i++) assert(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
});

Deno.test("sortableId: a clock held back past the counter's four digits borrows the next millisecond", () => {
  const now = Date.now() + 7_200_000;
  let last = sortableId(now);
  // 36^4 ids in one millisecond (a clock held back that long): the next ones must still sort.
  for (let i = 0; i < 36 ** 4 + 10; i++) {
    const id = sortableId(now - 1);
    if (!(last < id)) throw new Error(`${last} then ${id}, after ${i} ids`);
    last = id;
  }
  assertEquals(last.slice(0, 9), (now + 1).toString(36).padStart(9, "0"));
});

Deno.test("sortableId refuses a time that is no time, which would stop every later id", () => {
  assertThrows(() => sortableId(new Date("not a date").getTime()), RangeError, "finite");
  assertThrows(() => sortableId(Infinity), RangeError, "finite");
  assert(sortableId() !== sortableId(), "ids still move on");
});

Deno.test("sortableId: the largest time still has nine digits", () => {
  assertEquals(sortableId(36 ** 9 - 1).slice(0, 10), "zzzzzzzzz-");
});
