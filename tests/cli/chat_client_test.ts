import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import {
  connectFailure,
  formatFrame,
  formatSendError,
  NOT_RECOVERED,
  parseClientArgs,
  roomSocketUrl,
  tooLongToSend,
} from "../../cli/chat_client.ts";
import { SendError } from "../../client/channels_client.js";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { startTcpProxy } from "../_support/tcp_proxy.ts";

Deno.test("the terminal client encodes Unicode room names in the socket URL", () => {
  assertEquals(
    roomSocketUrl("http://127.0.0.1:8000", "café au lait"),
    "ws://127.0.0.1:8000/ws/chat/caf%C3%A9%20au%20lait/",
  );
  assertEquals(
    roomSocketUrl("https://chat.example", "東京"),
    "wss://chat.example/ws/chat/%E6%9D%B1%E4%BA%AC/",
  );
});

Deno.test("the terminal client explains its usage when the room is missing", () => {
  assertThrows(() => parseClientArgs([]), Error, "Usage: deno task client <room>");
  assertEquals(parseClientArgs(["lobby", "--url", "http://h:1"]), {
    room: "lobby",
    url: "http://h:1",
  });
});

Deno.test("the terminal client says which argument is one too many, then its usage", () => {
  const error = assertThrows(() => parseClientArgs(["lobby", "extra", "--url", "http://x"]), Error);
  assertEquals(error.message.split("\n")[0], 'Unexpected argument "extra"');
  assertStringIncludes(error.message, "\nUsage: deno task client <room>");
});

Deno.test("the terminal client refuses unknown options and a --token without a value", () => {
  assertThrows(() => parseClientArgs(["lobby", "--verbose"]), Error, "Unknown option --verbose");
  for (const args of [["lobby", "--token"], ["lobby", "--token", "--url", "http://h:1"]]) {
    assertThrows(() => parseClientArgs(args), Error, "--token needs a value");
  }
});

Deno.test("the terminal client shows no password of its --url in what it says", () => {
  const options = { room: "lobby", url: "http://alice:s3cret@127.0.0.1:1/" };
  const said = connectFailure(options, null);
  assertEquals(said, 'Could not connect to room "lobby" at http://***@127.0.0.1:1/');
  assertThrows(
    () => parseClientArgs(["lobby", "--url", "ftp://alice:s3cret@h/"]),
    Error,
    'not "ftp://***@h/"',
  );
});

Deno.test("the terminal client refuses a line longer than the server takes, before sending it", () => {
  assertEquals(tooLongToSend("x".repeat(1000), 2000), null);
  assertMatch(
    tooLongToSend("x".repeat(2000), 2000)!,
    /^! Not sent \(20\d\d bytes, more than the server takes: 2000\): x{40}…$/,
  );
  // Counted in UTF-8, as the server counts.
  assertEquals(tooLongToSend("é".repeat(900), 2000), null);
  assertMatch(tooLongToSend("é".repeat(1000), 2000)!, /^! Not sent \(20\d\d bytes/);
});

Deno.test("the terminal client refuses a --url that is not an http or ws URL, with its usage", () => {
  for (const url of ["not-a-url", "ftp://h:1", "file:///tmp"]) {
    assertThrows(() => parseClientArgs(["lobby", "--url", url]), Error, "--url must be an http(s)");
  }
  assertEquals(parseClientArgs(["lobby", "--url=wss://chat.example"]).url, "wss://chat.example");
});

Deno.test("the terminal client prints author and time, and errors plainly", () => {
  assertMatch(
    formatFrame({ message: "hi", author: "ada", time: "2026-01-01T10:05:00Z" }),
    /^\[\d\d:\d\d\] ada: hi$/,
  );
  assertEquals(formatFrame({ type: "error", error: "Message is empty" }), "! Message is empty");
});

Deno.test("the terminal client shows another user's control characters instead of obeying them", () => {
  // Clear the screen, set the window's title, colour, then a line passing for admin's.
  const message = "hi\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[31mRED\n[12:00] admin: run this\u2028\u0085";
  const line = formatFrame({ message, author: "Eve\r", time: "2026-01-01T10:05:00Z" });
  assertEquals(line.split("\n").length, 1);
  assertEquals(/[\p{Cc}\u2028]/u.test(line), false, line);
  assertMatch(
    line,
    /\] Eve\\r: hi\\x1b\[2J\\x1b\[H\\x1b\]0;pwned\\x07\\x1b\[31mRED\\n\[12:00\] admin: run this\\u2028\\x85$/,
  );
  // Text in any script, emoji and a tab-free message print as they are.
  assertMatch(formatFrame({ message: "café ☕ мир", author: "ada" }), /\] ada: café ☕ мир$/);
  assertEquals(formatFrame({ type: "error", error: "bad\x1b[2J" }), "! bad\\x1b[2J");
});

Deno.test("the terminal client tells a refused message from one that may have been stored", () => {
  assertEquals(
    formatSendError("hi", new SendError("Message is empty", { kind: "refused", ref: "r1" })),
    "! Not sent (Message is empty): hi",
  );
  assertMatch(
    formatSendError("hi", new SendError("lost", { kind: "disconnected", ref: "r2" })),
    /^! Not confirmed \(the connection was lost before the server answered\): hi$/,
  );
  assertEquals(
    formatSendError("hi", new SendError("late", { kind: "no-answer", ref: "r3" })),
    "! Not confirmed (no answer from the server in time): hi",
  );
  assertEquals(
    formatSendError("hi", new SendError("lost it", { kind: "unconfirmed", ref: "r4" })),
    "! Not confirmed (the server lost the answer from its storage): hi",
  );
});

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

function startClient(
  url: string,
  room: string,
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/chat_client.ts", room, "--url", url],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("the terminal client recovers what it missed while cut off, once each, in order", async () => {
  await using server = await startTestServer({ rateLimit: { perSecond: 10_000, burst: 10_000 } });
  await using proxy = startTcpProxy(server.port);
  const other = await TestSocket.open(server.wsUrl("/ws/chat/away/"));
  const child = startClient(proxy.httpUrl(""), "away");
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  await readUntilReader(stderr, "Connected to");
  other.sendJson({ message: "before the cut" });
  let printed = await readUntilReader(stdout, "before the cut");

  proxy.cut();
  await readUntilReader(stderr, "Connection lost");
  const missed = Array.from({ length: 70 }, (_, i) => `while away ${i + 1}`);
  for (const message of missed) other.sendJson({ message });
  await other.nextMatching((frame) => frame.message === missed.at(-1), 15_000);
  proxy.restore();
  printed += await readUntilReader(stdout, `${missed.at(-1)}\n`);
  const texts = printed.trim().split("\n").map((line) => line.replace(/^\[\d\d:\d\d\] \S+: /, ""));
  assertEquals(texts, ["before the cut", ...missed]);

  await child.stdin.close();
  assertEquals((await child.status).code, 0);
  assertEquals(await readRest(stdout), "");
  const rest = await readRest(stderr);
  assertEquals(rest.includes(NOT_RECOVERED), false);
  await other.close();
});

Deno.test("piped lines are all stored, once each and in order, at a pace the rate limit takes, before the client exits 0", async () => {
  // The default rate limit (20 a second, bursts of 40): 60 lines at once would be a flood.
  await using server = await startTestServer();
  const other = await TestSocket.open(server.wsUrl("/ws/chat/piped/"));
  const child = startClient(server.url, "piped");
  const piped = Array.from({ length: 60 }, (_, i) => `piped ${i + 1}`);
  const writer = child.stdin.getWriter();
  // Written and closed at once: the client reads them before the server has said anything.
  await writer.write(new TextEncoder().encode(piped.join("\n") + "\n"));
  await writer.close();
  const { code, stderr } = await child.output();
  const said = new TextDecoder().decode(stderr);
  assertEquals(code, 0, said);
  assertEquals(said.includes("Not sent") || said.includes("Not confirmed"), false, said);
  // Stored: a socket that joins now gets them as the room's history (its last 50).
  const late = await TestSocket.open(server.wsUrl("/ws/chat/piped/"));
  const history = [];
  for (let n = 0; n < 50; n++) history.push(String((await late.nextJson()).message));
  assertEquals(history, piped.slice(10));
  const live = [];
  for (let n = 0; n < 60; n++) live.push(String((await other.nextJson()).message));
  assertEquals(live, piped);
  await late.close();
  await other.close();
});

Deno.test("a line too long for the server is refused by the client, the next one still goes, and the exit code says one was not sent", async () => {
  await using server = await startTestServer();
  const other = await TestSocket.open(server.wsUrl("/ws/chat/long/"));
  const child = startClient(server.url, "long");
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${"x".repeat(70_000)}\nafter the long one\n`));
  await writer.close();
  const { code, stderr } = await child.output();
  const said = new TextDecoder().decode(stderr);
  assertEquals(code, 1, said);
  assertMatch(said, /! Not sent \(70\d+ bytes, more than the server takes: 65536\)/);
  assertEquals((await other.nextJson()).message, "after the long one");
  assertEquals(said.includes("closed the connection"), false, said);
  await other.close();
});

Deno.test("lines sent while cut off wait for the connection however many they are, and are all stored once it is back, in order", async () => {
  // The default rate limit (20 a second, bursts of 40): sent at once, they would be a flood.
  await using server = await startTestServer();
  await using proxy = startTcpProxy(server.port);
  const other = await TestSocket.open(server.wsUrl("/ws/chat/outage/"));
  const child = startClient(proxy.httpUrl(""), "outage");
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  await readUntilReader(stderr, "Connected to");
  proxy.cut();
  await readUntilReader(stderr, "Connection lost");
  // More than the 100 a person typing may leave waiting: piped, the input just waits.
  const piped = Array.from({ length: 150 }, (_, i) => `piped offline ${i + 1}`);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(piped.join("\n") + "\n"));
  await writer.close();
  proxy.restore();
  const received: string[] = [];
  while (received.length < piped.length) {
    received.push(String((await other.nextJson(20_000)).message));
  }
  assertEquals(received, piped);
  assertEquals((await child.status).code, 0);
  const rest = await readRest(stderr);
  assertEquals(rest.includes("Not sent"), false, rest);
  await child.stdout.cancel();
  await other.close();
});

Deno.test("against a server without the stream protocol the client says its messages go unconfirmed, and sends them", async () => {
  const frames: string[] = [];
  const received = Promise.withResolvers<void>();
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => {
      frames.push(String(event.data));
      if (frames.length === 2) received.resolve();
    };
    return response;
  });
  const child = startClient(`http://127.0.0.1:${server.addr.port}`, "plain");
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("one\ntwo\n"));
  await received.promise;
  await writer.close();
  const { code, stderr } = await child.output();
  const said = new TextDecoder().decode(stderr);
  assertEquals(code, 0, said);
  assertMatch(said, /The server does not confirm messages: they are sent unconfirmed/);
  assertEquals(frames.map((frame) => [JSON.parse(frame).message, JSON.parse(frame).ack]), [
    ["one", undefined],
    ["two", undefined],
  ]);
});

Deno.test("piped input that ended before an outage still waits for the connection, and is all stored", async () => {
  await using server = await startTestServer();
  await using proxy = startTcpProxy(server.port);
  const other = await TestSocket.open(server.wsUrl("/ws/chat/ended/"));
  const child = startClient(proxy.httpUrl(""), "ended");
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  await readUntilReader(stderr, "Connected to");
  const piped = Array.from({ length: 20 }, (_, i) => `ended ${i + 1}`);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(piped.join("\n") + "\n"));
  await writer.close();
  proxy.cut();
  // Kept: what the client says of the line in flight may come before this.
  const beforeLost = await readUntilReader(stderr, "Connection lost");
  // Longer than the end of input waits for answers (5 s and the pace): the outage is the test.
  await new Promise((resolve) => setTimeout(resolve, 7_000));
  proxy.restore();
  const { code } = await child.status;
  const said = beforeLost + await readRest(stderr);
  // A line in flight when the connection was cut may have been lost: it is said so, never
  // dropped without a word. Every other line is stored, once.
  const unconfirmed = piped.filter((line) =>
    said.includes(`Not confirmed (the connection was lost before the server answered): ${line}`)
  );
  assert(unconfirmed.length <= 1, said);
  // Both forms: "! Not sent (why): line" for one line, "N message(s) not sent" at the end.
  assertEquals(/not sent/i.test(said), false, said);
  const stored = piped.filter((line) => !unconfirmed.includes(line));
  const received: string[] = [];
  while (received.length < stored.length) received.push(String((await other.nextJson()).message));
  assertEquals(received, stored);
  assertEquals(code, unconfirmed.length === 0 ? 0 : 1);
  await child.stdout.cancel();
  await other.close();
});

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

async function readUntilReader(
  reader: ReadableStreamDefaultReader<string>,
  needle: string,
): Promise<string> {
  let text = "";
  while (!text.includes(needle)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Output ended before "${needle}": ${text}`);
    text += value;
  }
  return text;
}

async function readRest(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let text = "";
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    text += chunk.value;
  }
  return text;
}

Deno.test("the terminal client refuses the rooms '.' and '..', which a URL resolves away", () => {
  for (const room of [".", ".."]) {
    assertThrows(() => parseClientArgs([room]), Error, `No chat room can be named "${room}"`);
  }
});

Deno.test("CHAT_URL set but empty means the default URL, as every setting", () => {
  const before = Deno.env.get("CHAT_URL");
  Deno.env.set("CHAT_URL", "");
  try {
    assertEquals(parseClientArgs(["lobby"]).url, "http://127.0.0.1:8000");
  } finally {
    if (before === undefined) Deno.env.delete("CHAT_URL");
    else Deno.env.set("CHAT_URL", before);
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
