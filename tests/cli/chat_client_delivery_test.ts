/** The terminal client as a process: every line stored once, in order, across outages. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { NOT_RECOVERED } from "../../cli/chat_client.ts";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { startTcpProxy } from "../_support/tcp_proxy.ts";
import { readRest, readUntilReader, startClient } from "./_chat_client_support.ts";

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
