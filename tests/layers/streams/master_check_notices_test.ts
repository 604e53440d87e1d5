/**
 * After a failover every active room's stream takes a new epoch: the log names the first few of
 * a minute and counts the rest in one line, so a server with thousands of rooms writes a few.
 */
import { assertEquals } from "@std/assert";
import { MasterCheckNotices } from "../../../layers/streams/_master_check.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { log } from "../../../telemetry/log.ts";

Deno.test("new epochs after a master change: five named in a minute, the rest counted in one line", () => {
  using captured = new CapturedLog();
  log.setLevel("warn");
  try {
    const notices = new MasterCheckNotices();
    for (let room = 0; room < 1000; room++) notices.heard(`chat.r${room}`, "new-epoch", 8);
    notices.close(); // the minute's summary is written now rather than at its end
    const named = captured.lines.filter((line) => line.includes("WARN Stream of "));
    assertEquals(named.length, 5, captured.lines.join("\n"));
    assertEquals(named[0].includes('"chat.r0"') && named[0].includes("offsets after 7"), true);
    const counted = captured.lines.filter((line) => line.includes("995 more stream(s)"));
    assertEquals(counted.length, 1, captured.lines.join("\n"));
    assertEquals(captured.lines.length, 6);
  } finally {
    log.setLevel("silent");
  }
});

Deno.test("a new epoch heard after close (a publish that answered during it) is written at once", () => {
  using captured = new CapturedLog();
  log.setLevel("warn");
  try {
    const notices = new MasterCheckNotices();
    notices.close();
    for (let room = 0; room < 7; room++) notices.heard(`chat.r${room}`, "new-epoch", 3);
    assertEquals(captured.lines.filter((line) => line.includes("WARN Stream of ")).length, 5);
    // No timer waits to write the rest: nothing would be left to write it at shutdown.
    const counted = captured.lines.filter((line) => line.includes("1 more stream(s)"));
    assertEquals(counted.length, 2, captured.lines.join("\n"));
  } finally {
    log.setLevel("silent");
  }
});
