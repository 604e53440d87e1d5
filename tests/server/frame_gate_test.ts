import { assert, assertEquals } from "@std/assert";
import { FrameGate, REF_READ_BYTES, SUSTAINED_SECONDS } from "../../server/_frame_gate.ts";
import { CloseCode } from "../../server/close_codes.ts";

const LIMITS = { maxMessageBytes: 100, rateLimit: { perSecond: 10, burst: 3 } };

Deno.test("a frame over the size limit is refused with 1009, counted in UTF-8 bytes", () => {
  const gate = new FrameGate(LIMITS, () => 0);
  assertEquals(gate.check("x".repeat(100)), null);
  assertEquals(gate.check("é".repeat(50)), null); // 100 bytes
  const refusal = gate.check("é".repeat(51)); // 102 bytes in 51 characters
  assertEquals(refusal?.code, CloseCode.MESSAGE_TOO_BIG);
  assertEquals(refusal?.message, "Message too big: 102 bytes, the limit is 100 bytes");
  assertEquals(gate.check(new ArrayBuffer(101))?.code, CloseCode.MESSAGE_TOO_BIG);
  // Longer than the limit in characters: over it whatever they are, and not encoded to count.
  assertEquals(
    gate.check("é".repeat(101))?.message,
    "Message too big: 101 characters, the limit is 100 bytes",
  );
});

Deno.test("an oversize frame's refusal names its ref, unless the frame is too big to read", () => {
  const gate = new FrameGate(LIMITS, () => 0);
  const frame = (length: number) => JSON.stringify({ message: "x".repeat(length), ref: "r7" });
  assertEquals(gate.check(frame(200))?.ref, "r7");
  const huge = gate.check(frame(REF_READ_BYTES));
  assertEquals([huge?.code, huge?.ref], [CloseCode.MESSAGE_TOO_BIG, undefined]);
});

Deno.test("a flood is refused without a close first, and with 1008 when it goes on", () => {
  const clock = 0;
  const gate = new FrameGate(LIMITS, () => clock);
  for (let i = 0; i < 3; i++) assertEquals(gate.check("hi"), null); // the burst
  const codes = Array.from({ length: 4 }, () => gate.check("hi")?.code);
  // Told three times (the burst) without a close; the fourth refusal in a row closes.
  assertEquals(codes, [undefined, undefined, undefined, CloseCode.POLICY_VIOLATION]);
});

Deno.test("a flood that gets a frame in with every token that comes back is still closed", () => {
  for (const timesTheRate of [2, 3]) {
    let clock = 0;
    const gate = new FrameGate(LIMITS, () => clock); // 10 a second, a burst of 3
    // Evenly paced at 2 or 3 times the rate: every second or third frame is let in, as a token
    // comes back, so refusals never come more than two in a row.
    let closedAfterMs = -1;
    for (let frame = 1; frame <= 2000 && closedAfterMs < 0; frame++) {
      clock += 100 / timesTheRate;
      if (gate.check("hi")?.code === CloseCode.POLICY_VIOLATION) closedAfterMs = clock;
    }
    assert(closedAfterMs >= 0, `a flood at ${timesTheRate} times the rate was never closed`);
    // The burst and SUSTAINED_SECONDS at the rate, drained at (times - 1) x the rate.
    const expected = (3 + 10 * SUSTAINED_SECONDS) / (10 * (timesTheRate - 1)) * 1000;
    assert(Math.abs(closedAfterMs - expected) < 500, `closed after ${closedAfterMs} ms`);
  }
});

Deno.test("a client told to slow down that does is not closed, nor one that pastes now and then", () => {
  let clock = 0;
  const gate = new FrameGate(LIMITS, () => clock);
  for (let round = 0; round < 20; round++) {
    // A burst over the limit, told twice, then within the rate, then quiet for a while.
    for (let i = 0; i < 5; i++) assertEquals(gate.check("hi")?.code, undefined, `round ${round}`);
    for (let i = 0; i < 5; i++) {
      clock += 100;
      assertEquals(gate.check("hi"), null);
    }
    clock += 1000;
  }
  // At the defaults (20 a second, a burst of 40): 60 lines pasted every 5 s, 12 a second on
  // average, each paste told 20 times.
  const defaults = { maxMessageBytes: 100, rateLimit: { perSecond: 20, burst: 40 } };
  const pasting = new FrameGate(defaults, () => clock);
  for (let paste = 0; paste < 50; paste++) {
    for (let line = 0; line < 60; line++) {
      assertEquals(pasting.check("hi")?.code, undefined, `paste ${paste}, line ${line}`);
    }
    clock += 5000;
  }
});

Deno.test("a clock set back is taken as a pause, not as a reason to refuse or close", () => {
  let clock = 1_000_000;
  const gate = new FrameGate(LIMITS, () => clock);
  for (let i = 0; i < 4; i++) gate.check("hi"); // the burst, then one refused
  clock -= 3_600_000; // the wall clock set back an hour (NTP), then a quiet while
  // The next burst is let in as after any pause; the one after it is told, not closed.
  assertEquals(Array.from({ length: 3 }, () => gate.check("hi")), [null, null, null]);
  assertEquals(gate.check("hi")?.code, undefined);
});

Deno.test("a frame of three-byte characters over the byte limit is refused, though its characters are fewer", () => {
  const gate = new FrameGate(
    { maxMessageBytes: 100, rateLimit: { perSecond: 100, burst: 100 } },
    () => 0,
  );
  assertEquals(gate.check("€".repeat(40))?.code, CloseCode.MESSAGE_TOO_BIG); // 120 bytes
  assertEquals(gate.check("€".repeat(33)), null); // 99 bytes
});
