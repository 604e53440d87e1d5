/** A receiver over capacity is said in the log once a minute, not once per dropped event. */
import { assertEquals, assertMatch } from "@std/assert";
import { QUIET_WARNING_PERIOD_MS, QuietWarning } from "../../telemetry/quiet_warning.ts";
import { warnDropped } from "../../layers/local_groups.ts";
import { InMemoryLayer } from "../../layers/in_memory.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

Deno.test("a flood of drops writes one line a minute, and the next line counts them", () => {
  using captured = new CapturedLog();
  log.setLevel("warn");
  let now = 0;
  const warning = new QuietWarning(QUIET_WARNING_PERIOD_MS, () => now);
  for (let n = 0; n < 1000; n++) warnDropped(warning, 1, "dice.roll", "channel dice (queue full)");
  now += QUIET_WARNING_PERIOD_MS;
  warnDropped(warning, 2, "chat.message", "socket");
  log.setLevel("silent");
  assertEquals(captured.lines.length, 2, captured.lines.join("\n"));
  assertMatch(captured.lines[0], /dropped 1 "dice.roll" event\(s\) to channel dice \(queue full\)/);
  assertMatch(
    captured.lines[1],
    /dropped events 1000 times .* 2 "chat.message" event\(s\) to socket/,
  );
});

Deno.test("a layer whose receivers refuse thousands of events logs one line for them", async () => {
  using captured = new CapturedLog();
  log.setLevel("warn");
  const layer = new InMemoryLayer();
  try {
    const full = () => false; // a receiver over capacity
    for (let n = 0; n < 20; n++) await layer.groupAdd("room", await layer.newChannel(full));
    for (let n = 0; n < 100; n++) await layer.groupSend("room", { type: "chat.message" });
    assertEquals((await layer.stats()).dropped, 2000);
    const lines = captured.lines.filter((line) => line.includes("Layer dropped"));
    assertEquals(lines.length, 1, lines.join("\n"));
  } finally {
    log.setLevel("silent");
    await layer.close();
  }
});
