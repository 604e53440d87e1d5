/**
 * `deno task send --channel` and `POST /_send/` with a `channel`: a send to a named channel
 * (the dice worker's, running in the test server) is counted, and one that nobody listens on
 * is reported and exits non-zero, never silent.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { parseSendArgs } from "../../cli/send.ts";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { createClient } from "redis";

const TOKEN = "channel-send-token";
const ROLL = {
  type: "chat.command",
  command: "roll",
  args: "3d4",
  room: "lobby",
  group: "chat.lobby",
  author: "ci",
};

function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
}

/** `deno task send` through the server at `url`'s `/_send/`. */
function runSend(url: string, ...args: string[]) {
  return runSendWith({ SEND_TOKEN: TOKEN, LAYER: "memory" }, ...args, "--url", url);
}

async function runSendWith(env: Record<string, string>, ...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/send.ts", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, out: decode(stdout), err: decode(stderr) };
}

Deno.test("deno task send --channel names a channel, and needs exactly one event", () => {
  const request = parseSendArgs(["--channel", "thumbnails", '{"type":"thumbnail.make","id":7}']);
  assertEquals([request.channel, request.group, request.event], [
    "thumbnails",
    undefined,
    { type: "thumbnail.make", id: 7 },
  ]);
  assertThrows(() => parseSendArgs(["--channel", "thumbnails"]), Error, "Usage");
  assertThrows(() => parseSendArgs(["--channel", "bad name", '{"type":"x"}']), TypeError);
  assertThrows(() => parseSendArgs(["--channel", "jobs", "not json"]), Error, "must be JSON");
});

Deno.test("/_send/ to a worker's channel is counted and the worker answers the room", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  const response = await post(server.httpUrl("/_send/"), { channel: "dice", event: ROLL });
  assertEquals(response.status, 200);
  assertEquals(await response.json(), { delivered: 1, dropped: 0, remoteProcesses: 0 });
  const frame = await socket.nextMatching((f) => f.author === "Dice");
  assertMatch(String(frame.message), /^ci rolled 3d4: \d \+ \d \+ \d = \d+$/);
  await socket.close();
});

Deno.test("/_send/ to a channel nobody listens on answers noListener; a bad name is 400", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const unheard = await post(server.httpUrl("/_send/"), {
    channel: "thumbnails",
    event: { type: "thumbnail.make" },
  });
  assertEquals(unheard.status, 200);
  assertEquals(await unheard.json(), {
    delivered: 0,
    dropped: 0,
    remoteProcesses: 0,
    noListener: true,
  });
  const bad = await post(server.httpUrl("/_send/"), { channel: "two words", event: { type: "x" } });
  assertEquals(bad.status, 400);
  assertMatch((await bad.json()).error, /Channel name must be/);
});

Deno.test("deno task send --channel prints the counted result, and fails when unheard", async () => {
  await using server = await startTestServer({ sendToken: TOKEN });
  const sent = await runSend(server.url, "--channel", "dice", JSON.stringify(ROLL));
  assertEquals(sent.code, 0, sent.err);
  assertMatch(sent.out, /Sent to channel "dice": taken by 1 listener\(s\) in the server/);
  const unheard = await runSend(server.url, "--channel", "thumbnails", '{"type":"x"}');
  assertEquals(unheard.code, 1, unheard.out);
  assert(
    unheard.err.includes('Not delivered: nobody listens on channel "thumbnails"'),
    unheard.err,
  );
});

const { available: redisAvailable } = await redisAvailability();
const redis = redisAvailable ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

Deno.test({
  name: "deno task send --channel on channels_redis says a send nobody takes yet is queued, and " +
    "exits 0: a Django worker that starts in time takes it, so a retry would send it twice",
  ignore: !redisAvailable,
  fn: async () => {
    // channels_redis' own prefix ("asgi"), as a Django project has it: a channel of this test's.
    const channel = `thumbnails.${uniquePrefix("send")}`;
    const env = { LAYER: "channels_redis", REDIS_URL: redis!.url };
    const { code, out, err } = await runSendWith(env, "--channel", channel, '{"type":"x"}');
    assertEquals(code, 0, err);
    assertStringIncludes(out, `Queued on channel "${channel}": nobody listens now; it waits`);
    // It is there, in channels_redis' queue for the channel.
    const client = createClient({ url: redis!.url });
    await client.connect();
    try {
      assertEquals(await client.zCard(`asgi${channel}`), 1);
    } finally {
      await client.del(`asgi${channel}`);
      await client.close();
    }
  },
});

Deno.test({
  name: "deno task send to a group on channels_redis counts the process inboxes it wrote, not " +
    "subscribers",
  ignore: !redisAvailable,
  fn: async () => {
    // A Django consumer's membership: a channel of another process in the group's sorted set.
    const group = `chat_${uniquePrefix("send").replace(/\W/g, "_")}`;
    const client = createClient({ url: redis!.url });
    await client.connect();
    try {
      await client.zAdd(`asgi:group:${group}`, {
        score: Date.now() / 1000,
        value: "specific.0123456789abcdef0123456789abcdef!feedc0de",
      });
      const env = { LAYER: "channels_redis", REDIS_URL: redis!.url };
      const { code, out, err } = await runSendWith(env, "--group", group, '{"type":"x"}');
      assertEquals(code, 0, err);
      assertStringIncludes(out, `Sent to "${group}" via Redis: 1 process inbox(es) written`);
    } finally {
      await client.del([`asgi:group:${group}`, "asgispecific.0123456789abcdef0123456789abcdef!"]);
      await client.close();
    }
  },
});
