import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { eventFrom, hostForUrl, parseSendArgs, sentSummary } from "../../cli/send.ts";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { createApp, InMemoryLayer, PublishUnconfirmedError, sendRoutes } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";

const SEND_TOKEN = "token-for-the-send-test";

Deno.test("deno task send takes a room without a dot and a group with one", () => {
  assertEquals(parseSendArgs(["lobby", '{"type":"x"}']).group, "chat.lobby");
  assertEquals(parseSendArgs(["chat.lobby", '{"type":"x"}']).group, "chat.lobby");
  assertEquals(parseSendArgs(["--room", "v1.2", "hi"]).group, "chat.v1.2");
  assertEquals(parseSendArgs(["café au lait", "hi"]).group, "chat.café au lait");
  // A room's name in decomposed Unicode is the room of its composed name.
  assertEquals(parseSendArgs(["cafe\u0301", "hi"]).group, "chat.caf\u00e9");
  assertThrows(() => parseSendArgs(["lobby"]), Error, "Usage: deno task send");
});

Deno.test("deno task send --group reaches a group named without a dot, as Django names its own", () => {
  const sent = parseSendArgs(["--group", "user_42", '{"type":"notify.user","n":1}']);
  assertEquals(
    [sent.group, sent.room, sent.event],
    ["user_42", undefined, { type: "notify.user", n: 1 }],
  );
  assertEquals(
    parseSendArgs(["--group", "chat_lobby", '{"type":"chat_message"}']).group,
    "chat_lobby",
  );
  assertThrows(
    () => parseSendArgs(["--group", "--room", "x", "hi"]),
    Error,
    "name the target twice",
  );
});

Deno.test("deno task send says which option it does not know, or which argument is too many", () => {
  const cases: [string[], string][] = [
    // Before: "--chanel" took "dice" as its value, and the count said only the usage.
    [["--chanel", "dice", '{"type":"x"}'], "Unknown option --chanel"],
    [["--chanel=dice", '{"type":"x"}'], "Unknown option --chanel"],
    [["lobby", "hi", "extra"], 'Unexpected argument "extra"'],
    [["--channel", "dice", '{"type":"roll"}', "extra"], 'Unexpected argument "extra"'],
  ];
  for (const [args, reason] of cases) {
    const error = assertThrows(() => parseSendArgs(args), Error);
    assertEquals(error.message.split("\n")[0], reason);
    assertStringIncludes(error.message, "\nUsage: deno task send");
  }
  // The configuration's own flags still pass through.
  assertEquals(parseSendArgs(["lobby", "hi", "--layer", "redis"]).configArgs, ["--layer", "redis"]);
});

Deno.test("deno task send with an unknown option exits 2 with the reason before the usage", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/send.ts", "--chanel", "dice", '{"type":"x"}'],
    stdout: "null",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(stderr);
  assertEquals(code, 2, said);
  assertEquals(said.split("\n")[0], "Unknown option --chanel");
  assertStringIncludes(said, "Usage: deno task send");
});

Deno.test("deno task send turns text or a bare message for a room into a chat message", () => {
  assertEquals(eventFrom("hello", true), { type: "chat.message", message: { message: "hello" } });
  assertEquals(eventFrom('{"message":"hi","author":"bot"}', true), {
    type: "chat.message",
    message: { message: "hi", author: "bot" },
  });
  assertEquals(eventFrom('{"type":"presence.refresh"}', false), { type: "presence.refresh" });
  assertThrows(() => eventFrom("hello", false), Error, "The event must be JSON");
  assertThrows(() => eventFrom('{"text":"no type"}', false), Error, 'string "type"');
});

Deno.test("deno task send refuses a flag without its value instead of reading the next flag", () => {
  for (const flag of ["--channel", "--url", "--token"]) {
    assertThrows(
      () => parseSendArgs([flag, "--room", "lobby", "hi"]),
      Error,
      `${flag} needs a value`,
    );
    assertThrows(() => parseSendArgs(["lobby", "hi", flag]), Error, `${flag} needs a value`);
  }
  const request = parseSendArgs(["--channel", "dice", "--url", "http://h:1", '{"type":"roll"}']);
  assertEquals(request.url, "http://h:1");
});

Deno.test("deno task send sends text to a room as typed, even when it parses as JSON", () => {
  for (const text of ["123", "true", "null", "[1, 2]", "4.50"]) {
    assertEquals(eventFrom(text, true), { type: "chat.message", message: { message: text } });
  }
  assertThrows(() => eventFrom("123", false), Error, 'string "type"');
});

Deno.test("deno task send reaches a room of the running server through /_send/", async () => {
  const token = "cli-test-token-of-the-send";
  await using server = await startTestServer({ sendToken: token });
  const socket = await TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent("東京")}/`));
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "cli/send.ts",
      "東京",
      "Deploy done",
      "--url",
      server.url,
    ],
    env: { SEND_TOKEN: token, LAYER: "memory" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assertEquals(code, 0, output);
  const frame = await socket.nextMatching((f) => f.message === "Deploy done", 15_000);
  assertEquals(frame.author, "Server");
  await socket.close();
});

Deno.test("deno task send with a wrong token says it was refused and exits non-zero", async () => {
  await using server = await startTestServer({ sendToken: "right-token-for-the-test" });
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/send.ts", "lobby", "x", "--url", server.url],
    env: { SEND_TOKEN: "wrong-token-for-the-test", LAYER: "memory" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(code, 1);
  assertEquals(new TextDecoder().decode(stderr).includes("refused (401)"), true);
});

Deno.test("deno task send told 'not confirmed' exits 3, not 1, so that a script does not send it twice", async () => {
  // A server whose layer took the message and lost the answer: `/_send/`'s 503 unconfirmed.
  const layer = new InMemoryLayer();
  layer.groupSend = () => Promise.reject(new PublishUnconfirmedError("the store did not answer"));
  await using services = await createTestServices({ sendToken: SEND_TOKEN }, { layer });
  const app = createApp({ routes: sendRoutes(services.config), services });
  // And a server before 0.20, whose answer gave the cause only after "Not confirmed: ".
  const before020 = () =>
    Response.json(
      { error: "Not confirmed: the store did not answer", unconfirmed: true },
      { status: 503 },
    );
  for (const answer of [(request: Request) => app.handle(request), before020]) {
    await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, answer);
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "cli/send.ts", "lobby", "x", "--url"].concat(
        `http://127.0.0.1:${server.addr.port}`,
      ),
      env: { SEND_TOKEN, LAYER: "memory" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(code, 3);
    assertStringIncludes(
      new TextDecoder().decode(stderr),
      "Not confirmed (do not send it again): the store did not answer\n",
    );
  }
  await app.close();
});

Deno.test("deno task send says no server answers without showing the --url's password", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/send.ts", "lobby", "x", "--url"].concat(
      `http://alice:s3cret@127.0.0.1:${port}`,
    ),
    env: { SEND_TOKEN, LAYER: "memory" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(stderr);
  assertEquals(code, 1);
  assertStringIncludes(said, `No server answers at http://***@127.0.0.1:${port}/`);
  assertEquals(said.includes("s3cret"), false, said);
});

Deno.test("deno task send names the Workers or processes a send went on to, beside its own count", () => {
  const result = { delivered: 3, dropped: 0, remoteProcesses: 1 };
  assertEquals(
    sentSummary("chat.lobby", result),
    'Sent to "chat.lobby": delivered to 3 connection(s) here, and went on to 1 other Worker(s) ' +
      "or process(es)",
  );
  assertEquals(
    sentSummary("chat.lobby", { ...result, dropped: 2, remoteProcesses: 0 }),
    'Sent to "chat.lobby": delivered to 3 connection(s) here, 2 dropped (receivers over capacity)',
  );
  // A room's message, stored in its stream through the server: where it went.
  assertEquals(
    sentSummary("chat.lobby", { ...result, remoteProcesses: 0, offset: 7, epoch: "k3x9" }),
    'Sent to "chat.lobby": offset 7 (epoch k3x9): delivered to 3 connection(s) here',
  );
});

Deno.test("send reaches the server's HOST however it is written, IPv6 with or without brackets", () => {
  assertEquals(hostForUrl("[::1]"), "[::1]");
  assertEquals(hostForUrl("::1"), "[::1]");
  assertEquals(hostForUrl("[::]"), "[::1]");
  assertEquals(hostForUrl("::"), "[::1]");
  assertEquals(hostForUrl("0.0.0.0"), "127.0.0.1");
  assertEquals(hostForUrl("chat.example"), "chat.example");
});

Deno.test("deno task send refuses the rooms '.' and '..', and a --url it cannot parse, without its password", () => {
  for (const room of [".", ".."]) {
    assertThrows(() => parseSendArgs(["--room", room, "hi"]), Error, "No chat room can be named");
  }
  const error = assertThrows(
    () => parseSendArgs(["lobby", "hi", "--url", "http://ada:s3cret@[::1:8000/"]),
    Error,
    "--url must be an http(s) URL",
  );
  assertEquals(error.message.includes("s3cret"), false, error.message);
});

Deno.test("deno task send stores no empty chat message: it is refused as a socket's is", async () => {
  await using server = await startTestServer({ sendToken: SEND_TOKEN });
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/send.ts", "lobby", " ", "--url", server.url],
    env: { SEND_TOKEN, LAYER: "memory" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(code, 2);
  assertStringIncludes(new TextDecoder().decode(stderr), "its text is empty");
  // Nor through /_send/ itself.
  const posted = await fetch(new URL("/_send/", server.url), {
    method: "POST",
    headers: {
      authorization: `Bearer ${SEND_TOKEN}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ group: "chat.lobby", event: { type: "chat.message", message: "" } }),
  });
  assertStringIncludes(await posted.text(), "its text is empty");
  assertEquals(posted.status, 400);
  assertEquals((await server.app.services.streams.latest("chat.lobby", 10)).events.length, 0);
});

Deno.test("deno task send takes a long room name written decomposed, as the room's sockets name it", () => {
  const room = "한국어채팅방".repeat(7); // 42 characters composed, 112 decomposed
  assertEquals(parseSendArgs([room.normalize("NFD"), "hi"]).group, `chat.${room}`);
});
