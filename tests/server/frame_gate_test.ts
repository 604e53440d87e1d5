import { assert, assertEquals } from "@std/assert";
import { FrameGate, REF_READ_BYTES } from "../../server/_frame_gate.ts";
import { CloseCode } from "../../server/close_codes.ts";

const LIMITS = { maxMessageBytes: 100, rateLimit: { perSecond: 10, burst: 3 } };

Deno.test("a frame over the size limit is refused with 1009, counted in UTF-8 bytes", () => {
  const gate = new FrameGate(LIMITS, () => 0);
  assertEquals(gate.check("x".repeat(100)), null);
  assertEquals(gate.check("é".repeat(50)), null); // 100 bytes
  const refusal = gate.check("é".repeat(51)); // 102 bytes in 51 characters
  assertEquals(refusal?.code, CloseCode.MESSAGE_TOO_BIG);
  assertEquals(refusal?.message, "Message too big: 102 bytes, the limit is 100");
  assertEquals(gate.check(new ArrayBuffer(101))?.code, CloseCode.MESSAGE_TOO_BIG);
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
  let clock = 0;
  const gate = new FrameGate(LIMITS, () => clock); // 10 a second
  for (let i = 0; i < 3; i++) gate.check("hi"); // the burst
  // 3 frames per token (30 a second): one is let in each time a token comes back, so no more
  // than 2 are refused in a row, fewer than the burst.
  let closedAfter = 0;
  for (let frame = 1; frame <= 300 && closedAfter === 0; frame++) {
    if (frame % 3 === 0) clock += 100;
    if (gate.check("hi")?.code === CloseCode.POLICY_VIOLATION) closedAfter = frame;
  }
  assert(closedAfter > 0, "a flood at 3 times the rate was never closed");
  assert(closedAfter <= 20, `closed only after ${closedAfter} frames`);
});

Deno.test("a client told to slow down that does is not closed", () => {
  let clock = 0;
  const gate = new FrameGate(LIMITS, () => clock);
  for (let round = 0; round < 20; round++) {
    // A burst over the limit, told twice, then as many frames within the rate as it was told.
    for (let i = 0; i < 5; i++) assertEquals(gate.check("hi")?.code, undefined, `round ${round}`);
    for (let i = 0; i < 5; i++) {
      clock += 100;
      assertEquals(gate.check("hi"), null);
    }
    clock += 300; // the bucket fills again
  }
});
