/** Bad input over real WebSockets: refused without harm to the server or anyone else. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { createTestApp } from "../_support/test_app.ts";
import { Communicator } from "../../testing.ts";
import type { Consumer } from "../../server/consumer.ts";
import { CloseCode } from "../../server/close_codes.ts";

function join(server: TestServer, room = "lobby"): Promise<TestSocket> {
  return TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent(room)}/`));
}

Deno.test("a path too long to route is answered 414, page or socket, and holds nothing after", async () => {
  await using server = await startTestServer();
  const path = `/chat/${"x".repeat(5000)}/`;
  const page = await fetch(server.httpUrl(path));
  assertEquals([page.status, (await page.text()).includes("URI Too Long")], [414, true]);
  const upgrade = await fetch(server.httpUrl(path), {
    headers: {
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    },
  });
  await upgrade.body?.cancel();
  assertEquals(upgrade.status, 414);
});

Deno.test("text that is not JSON gets an error frame and the socket stays usable", async () => {
  await using server = await startTestServer();
  const client = await join(server);
  client.send("<script>alert(1)</script>");
  assertEquals(await client.nextJson(), {
    type: "error",
    error: "Message must be JSON",
    message: "Message must be JSON",
  });
  client.sendJson({ message: "fine now" });
  assertEquals((await client.nextJson()).message, "fine now");
  await client.close();
});

Deno.test("JSON of the wrong shape gets an error frame", async () => {
  await using server = await startTestServer();
  const client = await join(server);
  for (const wrong of [{ text: "hi" }, { message: ["hi"] }, "hi", null]) {
    client.sendJson(wrong);
    const frame = await client.nextJson();
    assertEquals(frame.type, "error");
    assertMatch(String(frame.error), /message/);
  }
  await client.close();
});

Deno.test("a binary frame to the chat closes that socket with 1003 and no other", async () => {
  await using server = await startTestServer();
  const [sender, other] = [await join(server), await join(server)];
  sender.send(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  assertEquals((await sender.nextJson()).type, "error");
  assertEquals((await sender.closed).code, 1003);
  other.sendJson({ message: "unaffected" });
  assertEquals((await other.nextJson()).message, "unaffected");
  await other.close();
});

Deno.test("a 70 KiB frame closes that socket with 1009", async () => {
  await using server = await startTestServer();
  const [sender, other] = [await join(server), await join(server)];
  sender.sendJson({ message: "x".repeat(70 * 1024) });
  assertMatch(String((await sender.nextJson()).error), /too big/);
  assertEquals((await sender.closed).code, 1009);
  other.sendJson({ message: "unaffected" });
  assertEquals((await other.nextJson()).message, "unaffected");
  await other.close();
});

Deno.test("a flood is refused and closed with 1008 while the room loses nothing", async () => {
  const rateLimit = { perSecond: 20, burst: 40 };
  await using server = await startTestServer({ rateLimit });
  const [flooder, polite, listener] = [await join(server), await join(server), await join(server)];
  for (let n = 0; n < 200; n++) flooder.sendJson({ message: `flood ${n}` });
  const politeSent = [];
  for (let n = 0; n < 15; n++) {
    const message = `polite ${n}`;
    polite.sendJson({ message });
    politeSent.push(message);
    await polite.nextMatching((frame) => frame.message === message);
  }
  const { code } = await flooder.closed;
  assertEquals(code, 1008);
  polite.sendJson({ message: "the end" });
  const heard = [];
  for (let frame = await listener.nextJson(); frame.message !== "the end";) {
    heard.push(String(frame.message));
    frame = await listener.nextJson();
  }
  assertEquals(heard.filter((message) => message.startsWith("polite")), politeSent);
  const flood = heard.filter((message) => message.startsWith("flood"));
  // Every message within the burst reached the room, even though a close followed them.
  assert(flood.length >= rateLimit.burst, `only ${flood.length} accepted flood messages arrived`);
  assertEquals(flood, flood.toSorted((a, b) => Number(a.slice(6)) - Number(b.slice(6))));
  await polite.close();
  await listener.close();
});

Deno.test("a burst that goes on after the flood's close was decided still gets the close frame", async () => {
  // A page's queued sends go out at once: Deno drops a connection whose client still sends
  // after the close frame, and the kernel's reset then loses that frame (browsers saw 1006).
  await using server = await startTestServer({ rateLimit: { perSecond: 2, burst: 3 } });
  for (let run = 0; run < 3; run++) {
    const raw = await RawWebSocket.open(server.wsUrl("/ws/chat/flood/"));
    const frames = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => `{"message":"f${from + i}","ref":${from + i}}`);
    await raw.sendBurst(frames(0, 20));
    // The server has decided to close (its refusal says so); the page's queued sends still go.
    const told = [];
    do told.push(await raw.nextText()); while (!told.at(-1)!.includes('"closing"'));
    await raw.sendBurst(frames(20, 500));
    const { texts: after, closeCode } = await raw.readUntilClose();
    const texts = [...told, ...after];
    assertEquals(closeCode, 1008, `run ${run}`);
    assert(texts.some((text) => /Rate limit exceeded/.test(text)), `run ${run}: not told why`);
    raw.close();
  }
});

Deno.test("a flooder that never stops is closed all the same", async () => {
  await using server = await startTestServer({ rateLimit: { perSecond: 2, burst: 3 } });
  const raw = await RawWebSocket.open(server.wsUrl("/ws/chat/flood/"));
  const started = Date.now();
  let ended = false;
  while (!ended && Date.now() - started < 20_000) {
    await raw.send('{"message":"again"}').catch(() => ended = true);
  }
  raw.close();
  assert(ended, "the flooder was still connected after 20 s");
});

Deno.test("the flooder is told why its messages were refused", async () => {
  await using server = await startTestServer({ rateLimit: { perSecond: 20, burst: 10 } });
  const flooder = await join(server);
  for (let n = 0; n < 50; n++) flooder.sendJson({ message: `flood ${n}` });
  assertEquals((await flooder.closed).code, 1008);
  const refusals = [];
  while (flooder.pending > 0) {
    const frame = await flooder.nextJson();
    if (frame.type === "error") refusals.push(frame.error);
  }
  assert(refusals.length > 10, `only ${refusals.length} refusals`);
  assertMatch(String(refusals[0]), /Rate limit exceeded/);
});

Deno.test("a frame dropped because its socket's queue is full is answered with its ref, then 1013", async () => {
  await using app = await createTestApp({
    channelCapacity: 2,
    rateLimit: { perSecond: 10_000, burst: 10_000 },
  });
  const gate = Promise.withResolvers<void>();
  const slow: Consumer = () => ({ receiveJson: () => gate.promise }); // each frame waits
  const comm = new Communicator({ consumer: slow, services: app.services }, "/ws/slow/");
  assert((await comm.connect()).accepted);
  // One runs, two wait (the queue's capacity), the fourth has no place.
  for (let n = 1; n <= 4; n++) comm.sendJson({ message: `m${n}`, ref: `r${n}` });
  const refused = await comm.receiveJson() as Record<string, unknown>;
  gate.resolve();
  assertEquals([refused.type, refused.error, refused.ref], [
    "error",
    "Server busy: message dropped",
    "r4",
  ]);
  assertEquals(await comm.waitForClose(), CloseCode.TRY_AGAIN_LATER);
});
