/**
 * Malformed WebSocket handshakes over a real socket: refused with 400 or 426 as RFC 6455
 * says, never upgraded and never a 500, and each refusal's log line says why.
 */
import { assert, assertEquals } from "@std/assert";
import { CapturedLog } from "../_support/captured_log.ts";
import { startTestServer } from "../_support/server.ts";
import { handshakeStatus } from "../_support/socket.ts";

const KEY = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));

/** Sends one raw HTTP request and returns its status and headers. */
async function rawRequest(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  let text = "";
  const buffer = new Uint8Array(4096);
  while (!text.includes("\r\n\r\n")) {
    const read = await conn.read(buffer);
    if (read === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, read));
  }
  conn.close();
  const [statusLine, ...rest] = text.split("\r\n\r\n")[0].split("\r\n");
  const parsed = new Headers();
  for (const line of rest) {
    const colon = line.indexOf(":");
    parsed.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(" ")[1]), headers: parsed };
}

const UPGRADE = { Upgrade: "websocket", Connection: "Upgrade" };

Deno.test("malformed handshakes get 400 or 426 with the reason logged, never 101 or 500", async () => {
  using captured = new CapturedLog();
  const { lines } = captured;
  await using server = await startTestServer({ logLevel: "info" });
  const cases: [string, Record<string, string>, number, RegExp][] = [
    [
      "version 8",
      { ...UPGRADE, "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": KEY },
      426,
      /version "8"/,
    ],
    ["no version", { ...UPGRADE, "Sec-WebSocket-Key": KEY }, 426, /Sec-WebSocket-Version/],
    ["no key", { ...UPGRADE, "Sec-WebSocket-Version": "13" }, 400, /Sec-WebSocket-Key/],
    [
      "a 15-byte key",
      {
        ...UPGRADE,
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": btoa("fifteen bytes!!"),
      },
      400,
      /Sec-WebSocket-Key/,
    ],
    [
      "no Upgrade in Connection",
      {
        Upgrade: "websocket",
        Connection: "keep-alive",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": KEY,
      },
      400,
      /Connection/,
    ],
    ["a plain GET", {}, 426, /Not a WebSocket upgrade/],
  ];
  for (const [name, headers, status, reason] of cases) {
    lines.length = 0;
    const answer = await rawRequest(server.port, "/ws/echo/", headers);
    assertEquals(answer.status, status, name);
    if (status === 426) assertEquals(answer.headers.get("sec-websocket-version"), "13", name);
    // A request that asks for no upgrade is no handshake: its line is an HTTP one.
    const logged = name === "a plain GET"
      ? "HTTP GET /ws/echo/ 426 "
      : "WebSocket REJECT /ws/echo/";
    const reject = lines.find((line) => line.startsWith(logged));
    assert(reject !== undefined && reason.test(reject), `${name}: ${lines.join("\n")}`);
  }
});

Deno.test("refusals by Origin, login and the consumer each log their reason", async () => {
  using captured = new CapturedLog();
  const { lines } = captured;
  await using server = await startTestServer({ logLevel: "info" });
  const evil = { origin: "https://evil.example" };
  assertEquals(await handshakeStatus(server.wsUrl("/ws/echo/"), evil), 403);
  assertEquals(await handshakeStatus(server.wsUrl("/ws/presence/state/")), 403);
  assertEquals(await handshakeStatus(server.wsUrl("/ws/chat/%20lobby/")), 403);
  const rejects = lines.filter((line) => line.startsWith("WebSocket REJECT"));
  assertEquals(rejects.length, 3, lines.join("\n"));
  assert(/\/ws\/echo\/ .*\(Cross-site WebSocket refused: the Origin/.test(rejects[0]));
  assert(/\/ws\/presence\/state\/ .*\(Login required/.test(rejects[1]));
  assert(/\/ws\/chat\/%20lobby\/ .*\(A room name has no spaces at either end\)/.test(rejects[2]));
  // A huge Origin is quoted cut, with its length: one request cannot write 60 KB to the log.
  const huge = { origin: `https://${"a".repeat(60_000)}.example` };
  assertEquals(await handshakeStatus(server.wsUrl("/ws/echo/"), huge), 403);
  const cut = lines.filter((line) => line.startsWith("WebSocket REJECT"))[3];
  assert(cut.length < 1000 && cut.includes("(60016 characters)"), cut.slice(0, 500));
});

// The host is the site's own: the log must not send an operator to ALLOWED_HOSTS.
Deno.test("an http page's socket refused by an https site says so in its REJECT line", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info", trustProxy: true });
  const { host } = new URL(server.wsUrl("/"));
  const headers = { origin: `http://${host}`, "x-forwarded-proto": "https" };
  assertEquals(await handshakeStatus(server.wsUrl("/ws/echo/"), headers), 403);
  const reject = captured.lines.find((line) => line.startsWith("WebSocket REJECT"));
  assert(reject?.includes("is a plain http page of an https site"), reject);
});
