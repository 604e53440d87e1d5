import { assertEquals } from "@std/assert";
import { TokenBucket } from "../../server/_token_bucket.ts";

function takeAll(bucket: TokenBucket): number {
  let taken = 0;
  while (bucket.take()) taken++;
  return taken;
}

Deno.test("a full bucket gives its burst, then refills at the rate", () => {
  let clock = 1_000;
  const bucket = new TokenBucket(20, 40, () => clock);
  assertEquals(takeAll(bucket), 40);
  clock += 500; // half a second at 20/s
  assertEquals(takeAll(bucket), 10);
  clock += 60_000; // a long pause refills no more than the burst
  assertEquals(takeAll(bucket), 40);
});

Deno.test("a wall clock set back is taken as a pause, and refilling resumes from its new reading", () => {
  let clock = 1_000_000;
  const bucket = new TokenBucket(20, 40, () => clock);
  assertEquals(takeAll(bucket), 40);
  clock -= 3_600_000; // set back an hour: how long it really was cannot be told
  assertEquals(takeAll(bucket), 40, "not a client refused for an hour, nor for a moment");
  clock += 100; // 0.1 s after the new reading: two tokens, not an hour's wait
  assertEquals(takeAll(bucket), 2);
});
