/** The access log's WebSocket lines: HANDSHAKING, CONNECT, REJECT and DISCONNECT, each with why. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";

const CLIENT = String.raw`\[127\.0\.0\.1:\d+\]`;

/**
 * The DISCONNECT line of a socket on `path` that the server closed with `code` ("1009 (…)"),
 * and the reason its close frame gave.
 */
function closedByServer(path: string, code: string, reason: string): RegExp {
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return new RegExp(
    `^WebSocket DISCONNECT ${literal(path)} ${CLIENT} \\(closed by the server: ${
      literal(`${code}: ${JSON.stringify(reason)}`)
    }\\)$`,
  );
}

Deno.test("a WebSocket logs HANDSHAKING, CONNECT and DISCONNECT, and no HTTP line", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/caf%C3%A9/"));
  const path = String.raw`\/ws\/chat\/caf%C3%A9\/`;
  await captured.waitFor(new RegExp(`^WebSocket HANDSHAKING ${path} ${CLIENT}$`));
  await captured.waitFor(new RegExp(`^WebSocket CONNECT ${path} ${CLIENT}$`));
  await socket.close();
  await captured.waitFor(new RegExp(`^WebSocket DISCONNECT ${path} ${CLIENT}$`));
  const order = captured.lines.map((line) => line.split(" ")[1]);
  assertMatch(order.join(" "), /HANDSHAKING CONNECT DISCONNECT/);
  assert(!captured.lines.some((line) => line.startsWith("HTTP GET /ws/")));
});

Deno.test("at level debug, a socket's close code line names its client, as its DISCONNECT line does", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "debug" });
  const socket = await TestSocket.open(server.wsUrl("/ws/echo/"));
  await socket.close();
  const disconnect = await captured.waitFor(/^WebSocket DISCONNECT \/ws\/echo\/ /);
  const client = disconnect.match(/\[([^\]]+)\]/)![1];
  await captured.waitFor(
    new RegExp(
      ` DEBUG WebSocket /ws/echo/ \\[${client.replaceAll(".", "\\.")}\\] closed with \\d+`,
    ),
  );
});

Deno.test("a socket the server closes logs DISCONNECT with the close code", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  socket.send(new Uint8Array([1, 2, 3])); // the chat takes text only: 1003
  const { code, reason } = await socket.closed;
  assertEquals(code, 1003);
  await captured.waitFor(closedByServer("/ws/chat/lobby/", "1003 (UNSUPPORTED_DATA)", reason));
});

Deno.test("the DISCONNECT line names the code the server closed with, whatever the client answers", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const raw = await RawWebSocket.open(server.wsUrl("/ws/chat/big/"));
  await raw.send(JSON.stringify({ message: "x".repeat(70 * 1024) })); // over 64 KiB: 1009
  const { closeCode, closeReason } = await raw.readUntilClose();
  assertEquals(closeCode, 1009);
  raw.close(); // no close frame back: the server's socket sees 1006
  await captured.waitFor(closedByServer("/ws/chat/big/", "1009 (MESSAGE_TOO_BIG)", closeReason!));
});

Deno.test("a client's close that is not a page leaving says how it ended, its reason quoted", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const ws = new WebSocket(server.wsUrl("/ws/chat/lobby/"));
  await new Promise((resolve) => ws.onopen = resolve);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  ws.close(4000, "bye\nFAKE LINE"); // a reason with a line break cannot forge a log line
  await closed;
  const line = await captured.waitFor(/^WebSocket DISCONNECT \/ws\/chat\/lobby\/ /);
  assertMatch(line, /\(closed: 4000[^)]*: "bye\\nFAKE LINE"\)$/);
  assert(!captured.lines.some((one) => one.startsWith("FAKE LINE")));
});

Deno.test("a client's own 4001 is logged as its number, not under the server's name for it", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const ws = new WebSocket(server.wsUrl("/ws/chat/codes/"));
  await new Promise((resolve) => ws.onopen = resolve);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  ws.close(4001, "client bye"); // an app's own code: Channels apps use 4001-4003 for their own
  await closed;
  const line = await captured.waitFor(/^WebSocket DISCONNECT \/ws\/chat\/codes\/ /);
  assertMatch(line, /\(closed: 4001: "client bye"\)$/);
});

Deno.test("a refused handshake logs REJECT with its reason", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const status = await handshakeStatus(server.wsUrl("/ws/echo/"), {
    origin: "https://evil.example",
  });
  assert(status === 403);
  await captured.waitFor(
    new RegExp(`^WebSocket REJECT \\/ws\\/echo\\/ ${CLIENT} \\(.*Origin.*\\)$`),
  );
});

Deno.test("a client whose close crossed the server's refusal is logged as closing, the server's close as never sent", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const raw = await RawWebSocket.open(server.wsUrl("/ws/chat/big/"));
  // Over 64 KiB (refused: 1009), and the client's own close right behind it, in one write.
  await raw.sendThenClose(JSON.stringify({ message: "x".repeat(70 * 1024) }), 4000, "bye");
  const { closeCode } = await raw.readUntilClose();
  raw.close();
  assertEquals(closeCode, 4000, "the client got its own close back, not the server's");
  const line = await captured.waitFor(/^WebSocket DISCONNECT \/ws\/chat\/big\/ /);
  assertMatch(
    line,
    /\(closed: 4000[^)]*: "bye", before the server's close \(1009 \(MESSAGE_TOO_BIG\): "Message too big[^"]*"\) went\)$/,
  );
});

Deno.test("a chat socket refused for its room name says why in its REJECT line", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const status = await handshakeStatus(server.wsUrl(`/ws/chat/${"r".repeat(101)}/`));
  assertEquals(status, 403);
  await captured.waitFor(
    /^WebSocket REJECT \/ws\/chat\/r+\/ .*\(A room name is 1 to 100 characters\)$/,
  );
});

Deno.test("behind a trusted proxy, each socket's lines name the proxy's connection beside the forwarded address", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info", trustProxy: true });
  const forwarded = { headers: { "x-forwarded-for": "203.0.113.7" } };
  const shown =
    /^WebSocket (HANDSHAKING|CONNECT|DISCONNECT) \/ws\/echo\/ \[203\.0\.113\.7 via (127\.0\.0\.1:\d+)\]$/;
  // Two sockets of one forwarded address, as two tabs behind one proxy, one after the other.
  const seen: string[] = [];
  for (let n = 0; n < 2; n++) {
    const socket = await TestSocket.open(server.wsUrl("/ws/echo/"), forwarded);
    await socket.close();
    const others = seen.map((connection) => connection.replace(/[.:]/g, "\\$&")).join("|");
    const closed = new RegExp(`^WebSocket DISCONNECT .* via (?!${others || "$^"}\\])`);
    seen.push(shown.exec(await captured.waitFor(closed))?.[2] ?? "");
  }
  const lines = captured.lines.filter((line) => line.startsWith("WebSocket "));
  const connections = lines.map((line) => shown.exec(line)?.[2]);
  assertEquals(connections.includes(undefined), false, lines.join("\n"));
  // Each socket's three lines share its proxy connection, and the two sockets' differ.
  assertEquals(new Set(seen).size, 2, lines.join("\n"));
  for (const connection of seen) {
    assertEquals(connections.filter((one) => one === connection).length, 3, lines.join("\n"));
  }
});
