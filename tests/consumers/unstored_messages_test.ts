/**
 * The chat's log lines for messages it could not store: one per outage and its end, and none
 * per flap when failures and successes alternate (one Cluster shard down, the others up).
 */
import { assertEquals, assertMatch } from "@std/assert";
import { QUIET_MS, UnstoredMessages } from "../../consumers/unstored_messages.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

Deno.test("messages stored and refused in turn write two lines a minute, not two per message", () => {
  using captured = new CapturedLog();
  log.setLevel("info");
  let now = 0;
  const unstored = new UnstoredMessages(() => now);
  // A room on the down shard, then one elsewhere, for 30 s.
  for (let n = 0; n < 300; n++, now += 100) {
    unstored.failed("on-the-down-shard", "unsent", new Error("CLUSTERDOWN"));
    unstored.stored();
  }
  assertEquals(captured.lines.length, 2, captured.lines.join("\n"));
  assertMatch(
    captured.lines[0],
    /WARN Chat messages are not being stored: one to "on-the-down-shard"/,
  );
  assertMatch(captured.lines[1], /INFO Chat messages go through again \(1 not sent/);
  // A minute after the warning, the next end says every message counted since.
  now = QUIET_MS + 1;
  unstored.failed("on-the-down-shard", "unconfirmed", new Error("no answer in time"));
  unstored.stored();
  assertEquals(captured.lines.length, 4, captured.lines.join("\n"));
  assertMatch(captured.lines[2], /WARN .* was not confirmed/);
  assertMatch(
    captured.lines[3],
    /go through again \(300 not sent, not confirmed or not delivered live meanwhile\)/,
  );
});

Deno.test("a quiet outage that ends after the minute is said with its count", () => {
  using captured = new CapturedLog();
  log.setLevel("info");
  let now = 0;
  const unstored = new UnstoredMessages(() => now);
  unstored.failed("a", "unsent", new Error("away"));
  unstored.stored();
  now = 1000;
  unstored.failed("a", "unsent", new Error("away")); // within the minute: no line
  now = QUIET_MS + 1000;
  unstored.stored(); // the minute is over: said
  assertEquals(captured.lines.length, 3, captured.lines.join("\n"));
  assertMatch(captured.lines[2], /go through again \(1 not sent/);
});

Deno.test("a quiet outage that outlasts the minute is warned about then, not only at its end", () => {
  using captured = new CapturedLog();
  log.setLevel("info");
  let now = 0;
  const unstored = new UnstoredMessages(() => now);
  unstored.failed("a", "unsent", new Error("blip"));
  unstored.stored(); // a blip: warned, and its end said
  now = 30_000;
  unstored.failed("a", "unsent", new Error("away")); // within the minute: quiet
  assertEquals(captured.lines.length, 2);
  now = QUIET_MS + 1;
  unstored.failed("a", "unsent", new Error("still away")); // the minute is over: said now
  assertEquals(captured.lines.length, 3, captured.lines.join("\n"));
  assertMatch(captured.lines[2], /WARN Chat messages are not being stored/);
});
