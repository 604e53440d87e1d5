/** What a client writes, or an error carries, cannot forge, reorder or flood a log line. */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { createTestApp } from "../_support/test_app.ts";
import { Communicator, createTestServices } from "../../testing.ts";
import type { Consumer } from "../../server/consumer.ts";
import { log } from "../../telemetry/log.ts";

Deno.test("what a client wrote into a handshake cannot forge a log line", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const port = Number(new URL(server.httpUrl("/")).port);
  // A version header that closes the quote and the parenthesis, then a NEL (byte 0x85, which
  // a reader splitting lines as Python's `splitlines` does takes for a line break).
  const forged = '8") \x85WebSocket CONNECT /ws/admin/ [10.0.0.9:4242] (';
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = `GET /ws/echo/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
    `Sec-WebSocket-Version: ${forged}\r\n\r\n`;
  await conn.write(Uint8Array.from(request, (char) => char.charCodeAt(0))); // Latin-1 bytes
  await conn.read(new Uint8Array(1024)); // the 426
  conn.close();
  const line = await captured.waitFor(/^WebSocket REJECT \/ws\/echo\/ /);
  assertMatch(line, /Unsupported WebSocket version "8\\"\) \\u0085WebSocket CONNECT/);
  assert(
    !/[\u0085\u2028\u2029\n\r]/.test(line),
    `a line break got through: ${JSON.stringify(line)}`,
  );
});

Deno.test("a client's close reason cannot reorder the log line with bidirectional controls", async () => {
  using captured = new CapturedLog();
  await using services = await createTestServices();
  log.setLevel("info");
  const echo: Consumer = (conn) => ({ receive: (text) => conn.send(text) });
  const comm = new Communicator({ consumer: echo, services }, "/ws/echo/");
  await comm.connect();
  comm.socket.hangUp(4000, "bye \u202eevil\u2066 text"); // the client's close frame
  const line = await captured.waitFor(/^WebSocket DISCONNECT \/ws\/echo\//);
  assert(!/[\u202a-\u202e\u2066-\u2069]/.test(line), `a bidi control got through: ${line}`);
  assertMatch(line, /bye \\u202eevil\\u2066 text/);
  await comm.waitForClose();
});

Deno.test("a forwarded client address is logged on one line and cut, whatever the proxy passed on", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp({ trustProxy: true });
  log.setLevel("info");
  const forwarded = `10.0.0.1, evil\u009b31m\u0085FAKE ${"b".repeat(20_000)}`;
  const request = new Request("http://localhost/chat/", {
    headers: { "x-forwarded-for": forwarded },
  });
  await (await app.handle(request)).body?.cancel();
  const line = await captured.waitFor(/^HTTP GET \/chat\/ 200 /);
  assert(line.length < 1_000, `a line of ${line.length} characters`);
  assert(!/[\u0085\u009b]/.test(line), JSON.stringify(line.slice(0, 100)));
  assertMatch(line, /evil\\u009b31m\\u0085FAKE b+… \(200\d\d characters\)\]$/);
});

// What a consumer threw is shown, but a log line is no dump: an object holding a request's
// headers (a scope, say) or thousands of keys gives one short line without the secrets.
Deno.test("a thrown object that is not an Error is logged in one short line without its secrets", () => {
  using captured = new CapturedLog();
  log.setLevel("error");
  try {
    const many = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    const thrown = {
      reason: "quota",
      authorization: "Bearer SECRET-TOKEN",
      headers: new Headers({ cookie: "sessionid=SECRET-SESSION" }),
      sessionId: "SECRET-SESSION",
      ...many,
    };
    log.error("Consumer failed", thrown);
    const [line] = captured.lines;
    assert(line.includes('reason: "quota"'), line);
    assert(line.includes("headers: [Headers]"), line);
    assert(!line.includes("SECRET"), line);
    assert(line.length < 700, `${line.length} characters`);
    assertEquals(captured.lines.length, 1);
  } finally {
    log.setLevel("silent");
  }
});

// An exception's message may quote a client's text (JSON.parse shows the start of what it
// read), line breaks included: only the stack's frames may take lines of their own.
Deno.test("an error whose message holds a client's line break is logged with its message on one line, then its frames", () => {
  using captured = new CapturedLog();
  log.setLevel("error");
  try {
    const errors: Error[] = [];
    for (const text of ["x\nHTTP GET /admin/ 200 [0.001, 10.0.0.1:4444]", "\n    at forged (x)"]) {
      try {
        JSON.parse(text);
      } catch (error) {
        errors.push(error as Error);
      }
    }
    errors.push(new TypeError("room\u2028x\n    at forged (/ws/x/)"));
    for (const error of errors) log.error("Consumer connect failed for /ws/x/", error);
    assertEquals(captured.lines.length, errors.length);
    for (const [i, entry] of captured.lines.entries()) {
      const [first, ...frames] = entry.split("\n");
      assertStringIncludes(first, `ERROR Consumer connect failed for /ws/x/: ${errors[i].name}: `);
      assert(frames.length > 0, entry);
      assert(frames.every((line) => /^ {4}at /.test(line) && !line.includes("forged")), entry);
    }
    assertStringIncludes(captured.lines[0], String.raw`"x\u000aHTTP GET"... is not valid JSON`);
    assertStringIncludes(captured.lines[2], String.raw`TypeError: room\u2028x\u000a    at forged`);
  } finally {
    log.setLevel("silent");
  }
});
