/** The lean Redis connection's wire: RESP2 (`_resp_codec.ts`), command order, the URL, setup. */
import { assert, assertEquals, assertInstanceOf, assertMatch, assertRejects } from "@std/assert";
import { encodeCommand, parse, type RespReply } from "../../layers/_resp_codec.ts";
import { RespConnection } from "../../layers/_resp_connection.ts";
import { startRedisServer } from "../_support/redis.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import { test } from "./_resp_connection_support.ts";

log.setLevel("error");

const encoder = new TextEncoder();

/** Every reply in `text`, parsed one after the other. */
function parseAll(text: string): (RespReply | Error)[] {
  const bytes = encoder.encode(text);
  const replies = [];
  let at = 0;
  for (
    let parsed = parse(bytes, at, bytes.length);
    parsed;
    parsed = parse(bytes, at, bytes.length)
  ) {
    replies.push(parsed.value);
    at = parsed.next;
  }
  assertEquals(at, bytes.length, "every byte read");
  return replies;
}

Deno.test("resp: a command is an array of bulk strings, lengths in UTF-8 bytes", () => {
  assertEquals(encodeCommand(["PING"]), "*1\r\n$4\r\nPING\r\n");
  assertEquals(
    encodeCommand(["SET", "k", "héllo 関"]),
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nhéllo 関\r\n",
  );
  assertEquals(encodeCommand(["ECHO", ""]), "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
});

Deno.test("resp: every reply type is read, nested arrays and UTF-8 included", () => {
  const replies = parseAll(
    "+OK\r\n:42\r\n:-7\r\n$10\r\nhéllo 関\r\n$-1\r\n*-1\r\n*0\r\n" +
      "*3\r\n:1\r\n$5\r\nepoch\r\n*2\r\n$2\r\n\r\n\r\n+x\r\n",
  );
  assertEquals(replies, ["OK", 42, -7, "héllo 関", null, null, [], [1, "epoch", ["\r\n", "x"]]]);
  const [error] = parseAll("-NOSCRIPT No matching script\r\n");
  assertInstanceOf(error, Error);
  assertEquals((error as Error).message, "NOSCRIPT No matching script");
});

Deno.test("resp: a reply cut anywhere waits for the rest instead of being misread", () => {
  const text = "*3\r\n:123\r\n$6\r\nab\r\ncd\r\n*1\r\n+OK\r\n";
  const bytes = encoder.encode(text);
  for (let cut = 0; cut < bytes.length; cut++) {
    assertEquals(parse(bytes, 0, cut), undefined, `cut at ${cut}`);
  }
  assertEquals(parse(bytes, 0, bytes.length)?.value, [123, "ab\r\ncd", ["OK"]]);
});

Deno.test("resp: bytes that are no RESP2 reply are an error, not a guess", () => {
  const bytes = encoder.encode("HTTP/1.1 400 Bad Request\r\n");
  let thrown: unknown = null;
  try {
    parse(bytes, 0, bytes.length);
  } catch (error) {
    thrown = error;
  }
  assertInstanceOf(thrown, Error);
});

test("answers come back in the order of the commands, many in one turn", async () => {
  await using redis = await startRedisServer();
  const connection = await RespConnection.open(redis.url, { name: "test" });
  try {
    const calls = Array.from({ length: 2000 }, () => connection.call(["INCR", "n"]));
    assertEquals(await Promise.all(calls), Array.from({ length: 2000 }, (_, i) => i + 1));
    assertEquals(await connection.call(["SET", "word", "héllo 関"]), "OK");
    assertEquals(await connection.call(["GET", "word"]), "héllo 関");
    const big = "x".repeat(300_000); // larger than one read
    await connection.call(["SET", "big", big]);
    assertEquals(await connection.call(["GET", "big"]), big);
    await assertRejects(() => connection.call(["NOSUCHCOMMAND"]), Error, "unknown command");
    assertEquals(
      await connection.call(["PING"]),
      "PONG",
      "an error answer leaves the rest in step",
    );
  } finally {
    await connection.close();
  }
});

test("the URL's user, password and database are used; a wrong password fails the open", async () => {
  await using redis = await startRedisServer();
  const admin = await RespConnection.open(redis.url, { name: "test" });
  try {
    await admin.call(["ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "&*", "+@all"]);
    await admin.call(["SELECT", "3"]);
    await admin.call(["SET", "where", "db 3"]);
    await admin.call(["CONFIG", "SET", "requirepass", "top secret"]);
  } finally {
    await admin.close();
  }
  const port = redis.port;
  const alice = await RespConnection.open(`redis://alice:s3cret@127.0.0.1:${port}/3`, {
    name: "test",
  });
  assertEquals(await alice.call(["GET", "where"]), "db 3");
  assertEquals(await alice.call(["ACL", "WHOAMI"]), "alice");
  await alice.close();
  const byPassword = await RespConnection.open(`redis://:top%20secret@127.0.0.1:${port}`, {
    name: "test",
  });
  assertEquals(await byPassword.call(["ACL", "WHOAMI"]), "default");
  await byPassword.close();
  using captured = new CapturedLog();
  log.setLevel("warn");
  const error = await assertRejects(
    () =>
      RespConnection.open(`redis://alice:wrong@127.0.0.1:${port}/3`, {
        name: "test",
        setup: [["SCRIPT", "LOAD", "return 1"]],
      }),
    Error,
    `Cannot connect to Redis at redis://alice:***@127.0.0.1:${port}/3`,
  );
  assert(!error.message.includes("wrong"), "the password is not shown");
  assertMatch(error.message, /WRONGPASS/);
  // The commands pipelined behind the AUTH were refused for its sake: not warned of as well.
  log.setLevel("error");
  assertEquals(captured.lines.filter((line) => line.includes("refused at connect")), []);
});

test("its setup commands are said on every connect, before any other", async () => {
  await using redis = await startRedisServer();
  const script = "return 'loaded'";
  const restored = Promise.withResolvers<void>();
  const connection = await RespConnection.open(redis.url, {
    name: "resp-setup",
    setup: [["SCRIPT", "LOAD", script]],
    onRestored: restored.resolve,
  });
  try {
    const sha = String(await connection.call(["SCRIPT", "LOAD", script]));
    assertEquals(await connection.call(["EVALSHA", sha, "0"]), "loaded");
    // Restarted empty, Redis has lost its scripts: the reconnect loads them again first.
    await redis.restart();
    await restored.promise;
    assertEquals(await connection.call(["EVALSHA", sha, "0"]), "loaded");
  } finally {
    await connection.close();
  }
});

test("a setup command Redis refuses is logged, and the connection works without it", async () => {
  await using redis = await startRedisServer();
  const admin = await RespConnection.open(redis.url, { name: "admin" });
  try {
    await admin.call([
      "ACL",
      "SETUSER",
      "limited",
      "on",
      ">secret",
      "~*",
      "&*",
      "+@all",
      "-script",
    ]);
  } finally {
    await admin.close();
  }
  const url = `redis://limited:secret@127.0.0.1:${redis.port}`;
  const connection = await RespConnection.open(url, {
    name: "resp-refused-setup",
    setup: [["SCRIPT", "LOAD", "return 1"]],
  });
  try {
    assertEquals(await connection.call(["EVAL", "return 'ran'", "0"]), "ran");
  } finally {
    await connection.close();
  }
});
