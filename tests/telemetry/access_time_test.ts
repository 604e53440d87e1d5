/**
 * Access lines as the console gets them carry their time first, as every other line does: a log
 * file alone must place a request among the warnings around it. A sink (a test's) gets Daphne's
 * bare line.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { log } from "../../telemetry/log.ts";

const ISO_TIME = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;

function printed(write: () => void): string[] {
  const lines: string[] = [];
  const original = console.log;
  console.log = (line: string) => void lines.push(line);
  log.setLevel("info");
  try {
    write();
  } finally {
    console.log = original;
    log.setLevel("silent");
  }
  return lines;
}

Deno.test("access lines on the console start with their time; a sink gets them bare", () => {
  log.setSink(null);
  const [http, socket, ...more] = printed(() => {
    log.http("GET", "/chat/", 200, 0.002, "127.0.0.1:52757");
    log.websocket("CONNECT", "/ws/chat/lobby/", "127.0.0.1:52789");
  });
  assertEquals(more, []);
  assertMatch(
    http,
    new RegExp(`^${ISO_TIME} HTTP GET /chat/ 200 \\[0\\.002, 127\\.0\\.0\\.1:52757\\]$`),
  );
  assertMatch(
    socket,
    new RegExp(`^${ISO_TIME} WebSocket CONNECT /ws/chat/lobby/ \\[127\\.0\\.0\\.1:52789\\]$`),
  );
  const bare: string[] = [];
  log.setSink((line) => void bare.push(line));
  try {
    printed(() => log.http("GET", "/chat/", 200, 0.002, "127.0.0.1:52757"));
  } finally {
    log.setSink(null);
  }
  assertEquals(bare, ["HTTP GET /chat/ 200 [0.002, 127.0.0.1:52757]"]);
});
