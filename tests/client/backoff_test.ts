import { assert, assertEquals } from "@std/assert";
import { Backoff } from "../../client/backoff.js";

Deno.test("reconnect delays double from 0.5 s up to 10 s", () => {
  const highest = new Backoff({ random: () => 1 });
  const delays = Array.from({ length: 8 }, () => highest.next());
  assertEquals(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
});

Deno.test("jitter keeps each delay within the upper half of its step", () => {
  const lowest = new Backoff({ random: () => 0 });
  assertEquals([lowest.next(), lowest.next(), lowest.next()], [250, 500, 1000]);
  const random = new Backoff();
  for (let i = 0; i < 50; i++) {
    const delay = random.next();
    assert(delay >= 250 && delay <= 10_000, `delay ${delay} out of range`);
  }
});

Deno.test("a reset starts again from the shortest delay", () => {
  const backoff = new Backoff({ random: () => 1 });
  backoff.next();
  backoff.next();
  backoff.reset();
  assertEquals(backoff.attempts, 0);
  assertEquals(backoff.next(), 500);
});

Deno.test("after a policy close the short delays are skipped", () => {
  const backoff = new Backoff({ random: () => 1 });
  backoff.atLeast(3);
  assertEquals(backoff.next(), 4000);
  backoff.atLeast(1); // never shortens
  assertEquals(backoff.next(), 8000);
});
