import { assertEquals, assertMatch } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { redisAvailability, testRedisUrl } from "../_support/redis.ts";

const TOKEN = "s3cret-token-for-tests";

function post(url: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

Deno.test("a group send through /_send/ reaches the room's sockets", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  const response = await post(server.httpUrl("/_send/"), {
    group: "chat.lobby",
    event: { type: "chat.message", message: { message: "Deploy done", author: "ci" } },
  }, TOKEN);
  assertEquals(response.status, 200);
  assertEquals((await response.json()).delivered, 1);
  const frame = await socket.nextMatching((f) => f.message === "Deploy done");
  assertEquals([frame.author, frame.room, typeof frame.id, typeof frame.time], [
    "ci",
    "lobby",
    "string",
    "string",
  ]);
  await socket.close();
});

Deno.test("/_send/ to a room's group written in decomposed Unicode reaches the room", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const socket = await TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent("café")}/`));
  for (const event of [{ type: "chat.message", message: "stored" }, { type: "note", n: 1 }]) {
    const response = await post(
      server.httpUrl("/_send/"),
      { group: "chat.cafe\u0301", event },
      TOKEN,
    );
    assertEquals([response.status, (await response.json()).delivered], [200, 1]);
  }
  const frame = await socket.nextMatching((f) => f.message === "stored");
  assertEquals(frame.room, "café");
  await socket.close();
});

Deno.test("/_send/ without a token is refused with 401, with a wrong one too, saying it is invalid", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  const event = { type: "chat.message", message: { message: "forged" } };
  const anonymous = await post(server.httpUrl("/_send/"), { group: "chat.lobby", event });
  assertEquals(anonymous.status, 401);
  assertEquals(anonymous.headers.get("www-authenticate"), 'Bearer realm="send"');
  await anonymous.body?.cancel();
  const wrong = await post(server.httpUrl("/_send/"), { group: "chat.lobby", event }, "guess");
  assertEquals(wrong.status, 401);
  assertEquals(
    wrong.headers.get("www-authenticate"),
    'Bearer realm="send", error="invalid_token"',
  );
  await wrong.body?.cancel();
  const almost = await post(server.httpUrl("/_send/"), { group: "chat.lobby", event }, `${TOKEN}x`);
  assertEquals(almost.status, 401);
  await almost.body?.cancel();
  assertEquals(await socket.staysQuiet(300), true, "a refused send reached the room");
  await socket.close();
});

Deno.test("/_send/ does not exist when no token is configured", async () => {
  await using server = await startTestServer({ sendToken: "" });
  const event = { type: "chat.message", message: { message: "x" } };
  const withAnyToken = await post(server.httpUrl("/_send/"), { group: "chat.lobby", event }, "");
  assertEquals(withAnyToken.status, 404);
  await withAnyToken.body?.cancel();
  const get = await fetch(server.httpUrl("/_send/"));
  assertEquals(get.status, 404);
  await get.body?.cancel();
});

Deno.test("/_send/ refuses a bad group name, an event without type and a non-JSON body", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const cases: unknown[] = [
    { group: "", event: { type: "x" } },
    { group: "chat.lobby", event: { message: "no type" } },
    { event: { type: "x" } },
  ];
  for (const body of cases) {
    const response = await post(server.httpUrl("/_send/"), body, TOKEN);
    assertEquals(response.status, 400, JSON.stringify(body));
    await response.body?.cancel();
  }
  const notJson = await fetch(server.httpUrl("/_send/"), {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: "{nope",
  });
  assertEquals(notJson.status, 400);
  await notJson.body?.cancel();
  const tooLarge = await fetch(server.httpUrl("/_send/"), {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ group: "chat.lobby", event: { type: "x", text: "x".repeat(70_000) } }),
  });
  assertEquals(tooLarge.status, 413);
  assertEquals((await tooLarge.json()).error, "The body is over 65536 bytes");
});

Deno.test("/_send/ refuses an event nested thousands deep with 400 and its reason", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const body = `{"group":"chat.lobby","event":{"type":"x","deep":${"[".repeat(30_000)}${
    "]".repeat(30_000)
  }}}`;
  const response = await fetch(server.httpUrl("/_send/"), {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body,
  });
  assertEquals(response.status, 400);
  assertMatch((await response.json()).error, /more than \d+ deep/);
});

Deno.test("a connection.close with a long non-ASCII reason closes the room, cut to 123 bytes", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const target = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  const other = await TestSocket.open(server.wsUrl("/ws/chat/elsewhere/"));
  const reason = "é".repeat(120); // 240 bytes of UTF-8: more than a close frame carries
  const response = await post(server.httpUrl("/_send/"), {
    group: "chat.lobby",
    event: { type: "connection.close", code: 4000, reason },
  }, TOKEN);
  assertEquals(response.status, 200);
  await response.body?.cancel();
  const closed = await target.closed;
  assertEquals(closed.code, 4000);
  assertEquals(closed.reason, "é".repeat(61), "cut on a character boundary, at most 123 bytes");
  // The server is still up, and serves the other room.
  other.sendJson({ message: "still here" });
  assertEquals((await other.nextJson()).message, "still here");
  await other.close();
});

Deno.test("a connection.close with a code no close frame may carry is refused with 400", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  for (const code of [999, 1005, 1006, 2000, 70000, 4000.5, "4000"]) {
    const response = await post(server.httpUrl("/_send/"), {
      group: "chat.lobby",
      event: { type: "connection.close", code },
    }, TOKEN);
    assertEquals(response.status, 400, `code ${JSON.stringify(code)}`);
    assertMatch((await response.json()).error, /"code" must be 1000-1003, 1007-1014 or 3000-4999/);
  }
  assertEquals(await socket.staysQuiet(300), true, "a refused close reached the room");
  socket.sendJson({ message: "open still" });
  assertEquals((await socket.nextJson()).message, "open still");
  await socket.close();
});

const { available: redisAvailable } = await redisAvailability();
const redis = redisAvailable ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

Deno.test({
  name: "under channels_redis a name Channels does not take is a 400 with the reason, not a 503",
  ignore: !redisAvailable,
  fn: async () => {
    await using server = await startTestServer({
      sendToken: TOKEN,
      layer: "channels_redis",
      redisUrl: redis!.url,
    });
    const cases: [unknown, RegExp][] = [
      [{ group: "chat lobby", event: { type: "x" } }, /Group name must be/],
      [{ group: "café.x", event: { type: "x" } }, /Group name must be/],
      [{ channel: "specific.abc!déf", event: { type: "x" } }, /Channel name must be/],
    ];
    for (const [body, reason] of cases) {
      const response = await post(server.httpUrl("/_send/"), body, TOKEN);
      assertEquals(response.status, 400, JSON.stringify(body));
      assertMatch((await response.json()).error, reason);
    }
  },
});

Deno.test("/_send/ to a long room name written decomposed stores it in the room, as its sockets name it", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  // 42 characters composed (NFC), 112 decomposed: within the limit only once composed.
  const room = "한국어채팅방".repeat(7);
  assertEquals([[...room].length, [...room.normalize("NFD")].length], [42, 112]);
  const socket = await TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent(room)}/`));
  const response = await post(server.httpUrl("/_send/"), {
    group: `chat.${room.normalize("NFD")}`,
    event: { type: "chat.message", message: "stored" },
  }, TOKEN);
  const answer = await response.json();
  assertEquals([response.status, answer.delivered, answer.offset], [200, 1, 1]);
  const frame = await socket.nextMatching((f) => f.message === "stored");
  assertEquals([frame.room, frame.offset], [room, 1]);
  await socket.close();
});

Deno.test("/_send/ refuses a message or a group holding a lone surrogate, which no store can keep", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const cases = [
    { group: "chat.lobby", event: { type: "chat.message", message: "hi \ud800 there" } },
    { group: "chat.x\ud800y", event: { type: "chat.message", message: "hi" } },
  ];
  for (const body of cases) {
    const response = await post(server.httpUrl("/_send/"), body, TOKEN);
    assertEquals(response.status, 400, JSON.stringify(body));
    assertMatch((await response.json()).error, /well-formed Unicode/);
  }
});
