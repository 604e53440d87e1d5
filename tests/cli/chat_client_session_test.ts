/** The terminal client as a process: chatting, logging in, failing to connect, being refused. */
import { assertEquals, assertMatch } from "@std/assert";
import { roomSocketUrl } from "../../cli/chat_client.ts";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { startTcpProxy } from "../_support/tcp_proxy.ts";
import { readRest, readUntilReader, startClient } from "./_chat_client_support.ts";

Deno.test("the terminal client chats both ways and exits cleanly at end of input", async () => {
  await using server = await startTestServer();
  const browser = await TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent("café")}/`));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/chat_client.ts", "café", "--url", server.url],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("hello from the terminal\n"));
  const frame = await browser.nextMatching((f) => f.message === "hello from the terminal", 15_000);
  assertEquals(frame.author, "Anonymous");
  browser.sendJson({ message: "hello from the browser" });
  const printed = await readUntil(child.stdout, "Anonymous: hello from the browser");
  assertMatch(printed, /\[\d\d:\d\d\] Anonymous: hello from the browser/);
  await writer.close();
  const { code } = await child.status;
  await child.stderr.cancel();
  assertEquals(code, 0);
  await browser.close();
});

Deno.test("the terminal client logged in with a token chats as that user", async () => {
  await using server = await startTestServer();
  await server.app.services.users.create("ada", "quiet river stone");
  const { token } = await server.app.services.tokens.create("ada");
  assertEquals(
    new URL(roomSocketUrl("http://127.0.0.1:8000", "lobby", token)).searchParams.get("token"),
    token,
  );
  const browser = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/chat_client.ts", "lobby", "--url", server.url],
    env: { CHAT_TOKEN: token },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("signed by a token\n"));
  const frame = await browser.nextMatching((f) => f.message === "signed by a token", 15_000);
  assertEquals(frame.author, "ada");
  await writer.close();
  assertEquals((await child.status).code, 0);
  await child.stdout.cancel();
  await child.stderr.cancel();
  await browser.close();
});

async function readUntil(stream: ReadableStream<Uint8Array>, needle: string): Promise<string> {
  let text = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!text.includes(needle)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Output ended before "${needle}": ${text}`);
      text += value;
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}

Deno.test("Ctrl-C before the connection opened exits 1 and says nothing was sent", async () => {
  // A server that takes the connection and never answers the handshake.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const child = startClient(`http://127.0.0.1:${listener.addr.port}`, "never");
  using accepted = await listener.accept();
  child.kill("SIGINT");
  const { code, stderr } = await child.output();
  assertEquals(code, 1);
  assertMatch(new TextDecoder().decode(stderr), /Interrupted before the connection opened/);
  void accepted;
});

Deno.test("the terminal client says so and fails when it cannot connect", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = startClient(`http://127.0.0.1:${port}`, "nobody");
  await child.stdin.close();
  const { code, stdout, stderr } = await child.output();
  assertEquals(code, 1);
  assertEquals(new TextDecoder().decode(stdout), "");
  assertMatch(new TextDecoder().decode(stderr), /Could not connect to room "nobody"/);
});

Deno.test("the terminal client says a refused token or room was refused, not unreachable", async () => {
  await using server = await startTestServer();
  await server.app.services.users.create("ada", "quiet river stone");
  const { token } = await server.app.services.tokens.create("ada");
  await server.app.services.tokens.revokeAll("ada");
  const cases: [Record<string, string>, string, RegExp][] = [
    [
      { CHAT_TOKEN: token },
      "lobby",
      /Handshake status 403 Forbidden \(the token may be expired or revoked; the server's log says why\)/,
    ],
    [{}, "x ", /Handshake status 403 Forbidden \(the server's log says why\)/],
  ];
  for (const [env, room, expected] of cases) {
    const child = startClient(server.url, room, env);
    await child.stdin.close();
    const { code, stdout, stderr } = await child.output();
    assertEquals(code, 1);
    assertEquals(new TextDecoder().decode(stdout), "");
    const said = new TextDecoder().decode(stderr);
    assertMatch(said, expected);
    assertEquals(said.includes("Could not connect"), false, said);
  }
});

Deno.test("a token refused on a reconnect ends the client with 1 and says so, instead of retrying for ever", async () => {
  await using server = await startTestServer();
  await server.app.services.users.create("ada", "quiet river stone");
  const { token } = await server.app.services.tokens.create("ada");
  await using proxy = startTcpProxy(server.port);
  const child = startClient(proxy.httpUrl(""), "lobby", { CHAT_TOKEN: token });
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  await readUntilReader(stderr, "Connected to");
  // Revoked once the connection is lost: a socket still open would be closed by the revoke
  // itself (4001), which is another test's path.
  proxy.cut();
  await readUntilReader(stderr, "Connection lost");
  await server.app.services.tokens.revokeAll("ada");
  proxy.restore();
  // stdin stays open: the client must end on its own.
  const said = await readRest(stderr);
  const { code } = await child.status;
  await child.stdout.cancel();
  await child.stdin.close().catch(() => {});
  assertEquals(code, 1);
  assertMatch(said, /Handshake status 403 Forbidden \(the token may be expired or revoked/);
});

Deno.test("a close with 4001 (signed out) ends the client with 1 rather than reconnecting", async () => {
  await using server = await startTestServer();
  const child = startClient(server.url, "lobby");
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  await readUntilReader(stderr, "Connected to");
  await server.app.services.layer.groupSend("chat.lobby", {
    type: "connection.close",
    code: 4001,
    reason: "Token expired: log in again",
  });
  const said = await readRest(stderr);
  const { code } = await child.status;
  await child.stdout.cancel();
  await child.stdin.close().catch(() => {});
  assertEquals(code, 1);
  assertMatch(said, /The server closed the connection: Token expired: log in again/);
  assertEquals(said.includes("Reconnecting"), false, said);
});
