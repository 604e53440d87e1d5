/** The terminal client's arguments, settings and what it prints, in process. */
import { assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import {
  connectFailure,
  formatFrame,
  formatSendError,
  parseClientArgs,
  printable,
  roomSocketUrl,
  tooLongToSend,
} from "../../cli/chat_client.ts";
import { SendError } from "../../client/channels_client.js";

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
  // A right-to-left override would show "txt.exe" as "exe.txt"; isolates and marks too.
  assertEquals(
    printable("see \u202etxt.exe\u202c \u2067x\u2069\u200f"),
    "see \\u202etxt.exe\\u202c \\u2067x\\u2069\\u200f",
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
