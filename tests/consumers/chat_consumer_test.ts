import { assert, assertEquals, assertMatch, assertObjectMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { chatConsumer } from "../../consumers/chat.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../mod.ts";
import { isValidRoomName } from "../../consumers/chat_rooms.ts";

const GENEROUS = { rateLimit: { perSecond: 10_000, burst: 10_000 } };

async function join(app: TestApp, room: string): Promise<Communicator> {
  const comm = new Communicator(app, `/ws/chat/${encodeURIComponent(room)}/`);
  const { accepted, status } = await comm.connect();
  assert(accepted, `joining "${room}" was refused with ${status}`);
  return comm;
}

Deno.test("a chat message reaches every member of the room, the sender included", async () => {
  await using app = await createTestApp();
  const members = [await join(app, "lobby"), await join(app, "lobby"), await join(app, "lobby")];
  members[1].sendJson({ message: "Hello, room" });
  for (const member of members) {
    const frame = await member.receiveJson();
    assertEquals(frame.message, "Hello, room");
    assertEquals([frame.type, frame.room, frame.author], ["chat.message", "lobby", "Anonymous"]);
    assertMatch(String(frame.time), /^\d{4}-\d\d-\d\dT/);
    assertEquals(typeof frame.id, "string");
  }
});

Deno.test("a chat message reaches no one in another room", async () => {
  await using app = await createTestApp();
  const [lobby, elsewhere] = [await join(app, "lobby"), await join(app, "elsewhere")];
  lobby.sendJson({ message: "for the lobby" });
  assertEquals((await lobby.receiveJson()).message, "for the lobby");
  elsewhere.sendJson({ message: "marker" });
  // Delivery in one process is immediate: the lobby's message would have come first.
  assertEquals((await elsewhere.receiveJson()).message, "marker");
});

Deno.test("text that is not JSON gets an error frame and the connection stays open", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  comm.send("hello?");
  assertEquals(await comm.receiveJson(), {
    type: "error",
    error: "Message must be JSON",
    message: "Message must be JSON",
  });
  comm.sendJson({ message: "still here" });
  assertEquals((await comm.receiveJson()).message, "still here");
  assertEquals(comm.closeCode, null);
});

Deno.test("JSON without a string message gets an error frame, for every wrong shape", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  for (const wrong of [{}, { message: 5 }, { message: null }, [], "hi", null, 42, { text: "x" }]) {
    comm.sendJson(wrong);
    const frame = await comm.receiveJson();
    assertEquals(frame.type, "error", `${JSON.stringify(wrong)} was accepted`);
    assertMatch(String(frame.error), /message/);
  }
  assertEquals(comm.closeCode, null);
});

Deno.test("an empty, blank or invisible message is refused", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  // White space; a zero-width space; word joiners; a right-to-left override; NUL; a soft hyphen;
  // a Hangul filler; the braille blank; variation selectors; the combining grapheme joiner; a
  // Khmer inherent vowel; a mix.
  const blanks = ["", "   ", "\n\t", "\u200b", "\u2060\u2060", "\u202e", "\u0000", "\u00ad"];
  const more = ["\u3164", "\u2800", "\ufe0f", "\u{e0100}", "\u034f", "\u17b4", "\u3164\ufe0f"];
  for (const blank of [...blanks, ...more, " \u200b\ufeff "]) {
    comm.sendJson({ message: blank });
    assertEquals(await comm.receiveJson(), {
      type: "error",
      error: "Message is empty",
      message: "Message is empty",
    });
  }
});

Deno.test("a message over 10,000 characters is refused, one at the limit is sent", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  comm.sendJson({ message: "x".repeat(10_001) });
  const refused = await comm.receiveJson();
  assertEquals(refused.type, "error");
  assertMatch(String(refused.error), /too long/);
  comm.sendJson({ message: "y".repeat(10_000) });
  assertEquals(String((await comm.receiveJson()).message).length, 10_000);
});

Deno.test("the message limit counts characters as a reader does: 10,000 emoji are sent", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  // 20,000 UTF-16 units, 10,000 characters: at the limit.
  comm.sendJson({ message: "😀".repeat(10_000) });
  assertEquals([...String((await comm.receiveJson()).message)].length, 10_000);
  comm.sendJson({ message: "😀".repeat(10_001) });
  assertMatch(String((await comm.receiveJson()).error), /too long: at most 10000 characters/);
  comm.sendJson({ message: "x".repeat(9_999) + "😀" });
  assertEquals([...String((await comm.receiveJson()).message)].length, 10_000);
});

Deno.test("a room's name in decomposed and in composed Unicode is one room", async () => {
  await using app = await createTestApp();
  const composed = await join(app, "caf\u00e9");
  const decomposed = await join(app, "cafe\u0301");
  decomposed.sendJson({ message: "same room?" });
  for (const member of [composed, decomposed]) {
    const frame = await member.receiveJson();
    assertEquals([frame.message, frame.room], ["same room?", "caf\u00e9"]);
  }
});

Deno.test("a room name that NFC would make too long stays as it is written, and opens", async () => {
  await using app = await createTestApp();
  // U+0958 decomposes under NFC: 60 of them are 120 characters composed.
  const comm = await join(app, "\u0958".repeat(60));
  comm.sendJson({ message: "hi" });
  assertEquals((await comm.receiveJson()).room, "\u0958".repeat(60));
});

Deno.test("a room name of 30,000 combining marks is refused as quickly as one of plain letters", async () => {
  await using app = await createTestApp();
  const refusedIn = async (room: string) => {
    const start = performance.now();
    const comm = new Communicator(app, `/ws/chat/${encodeURIComponent(room)}/`);
    assertEquals((await comm.connect()).accepted, false);
    return performance.now() - start;
  };
  await refusedIn("x".repeat(101)); // the first refusal pays for what is loaded on first use
  const plain = await refusedIn("\u00e9".repeat(30_001));
  // Normalised, marks of two classes cost time quadratic in their number: 20 times the plain.
  const marks = await refusedIn("a" + "\u0301\u0316".repeat(15_000));
  assert(marks < Math.max(plain, 2) * 5, `${marks} ms against ${plain} ms`);
});

Deno.test("a logged-in user's name is the author", async () => {
  await using app = await createTestApp();
  const consumer = chatConsumer(app.services.streams, app.services.presence);
  const user = { username: "ada", isAuthenticated: true };
  const target = { consumer, services: app.services, route: "/ws/chat/:room/" };
  const comm = new Communicator(target, "/ws/chat/lobby/", { user });
  assert((await comm.connect()).accepted);
  comm.sendJson({ message: "hi" });
  assertEquals((await comm.receiveJson()).author, "ada");
  await comm.disconnect();
});

Deno.test("on entry the room's history arrives first, oldest first, marked history", async () => {
  await using app = await createTestApp(GENEROUS);
  const first = await join(app, "lobby");
  for (let n = 1; n <= 3; n++) first.sendJson({ message: `old ${n}` });
  for (let n = 1; n <= 3; n++) assertEquals((await first.receiveJson()).message, `old ${n}`);
  const late = await join(app, "lobby");
  for (let n = 1; n <= 3; n++) {
    const frame = await late.receiveJson();
    assertEquals([frame.message, frame.history], [`old ${n}`, true]);
  }
  first.sendJson({ message: "live" });
  const live = await late.receiveJson();
  assertEquals([live.message, live.history], ["live", undefined]);
});

Deno.test("the history shown on entry is the last 50 messages", async () => {
  await using app = await createTestApp(GENEROUS);
  const writer = await join(app, "busy");
  for (let n = 1; n <= 55; n++) writer.sendJson({ message: `m${n}` });
  for (let n = 1; n <= 55; n++) await writer.receiveJson();
  const reader = await join(app, "busy");
  const shown = [];
  for (let n = 0; n < 50; n++) shown.push((await reader.receiveJson()).message);
  assertEquals(shown, Array.from({ length: 50 }, (_, i) => `m${i + 6}`));
  assert(await reader.receiveNothing(50));
});

Deno.test("history is kept per room", async () => {
  await using app = await createTestApp();
  const lobby = await join(app, "lobby");
  lobby.sendJson({ message: "lobby only" });
  await lobby.receiveJson();
  const other = await join(app, "other");
  assert(await other.receiveNothing(50), "another room's history was shown");
});

Deno.test("Unicode room names with spaces work and are decoded", async () => {
  await using app = await createTestApp();
  // The longest: 100 characters, each two UTF-16 units (and a presence topic of 105).
  for (const room of ["café au lait", "東京", "🙂 emoji room", "🙂".repeat(100)]) {
    const comm = await join(app, room);
    comm.sendJson({ message: "bonjour" });
    assertEquals((await comm.receiveJson()).room, room);
    await comm.disconnect();
  }
});

Deno.test("invalid room names are refused with 403 before the socket opens", async () => {
  await using app = await createTestApp();
  const channels = app.layer.stats().channels;
  for (const room of [" lobby", "lobby ", "a\u0000b", "x".repeat(101)]) {
    const comm = new Communicator(app, `/ws/chat/${encodeURIComponent(room)}/`);
    assertObjectMatch(await comm.connect(), { accepted: false, status: 403 }, JSON.stringify(room));
  }
  assertEquals(app.layer.stats().channels, channels, "a refused socket kept its channel");
});

Deno.test("a member that leaves stops receiving and leaves no trace in the layer", async () => {
  await using app = await createTestApp({ presenceGraceMs: 0 });
  const before = app.layer.stats();
  const [stays, leaves] = [await join(app, "lobby"), await join(app, "lobby")];
  await leaves.disconnect();
  assertEquals(app.layer.stats().channels, before.channels + 1);
  stays.sendJson({ message: "after" });
  assertEquals((await stays.receiveJson()).message, "after");
  await stays.disconnect();
  // The room's presence topic is left once its last member is untracked and announced.
  await app.services.presence.flush();
  const after = app.layer.stats();
  assertEquals([after.channels, after.groups], [before.channels, before.groups]);
});

Deno.test("room names that browsers would resolve away as path segments are not valid", () => {
  assertEquals([".", ".."].map(isValidRoomName), [false, false]);
  assertEquals(["...", "a.b", "café au lait", "東京"].map(isValidRoomName), [
    true,
    true,
    true,
    true,
  ]);
});

Deno.test("a room name of invisible characters alone is not valid; one with a zero-width joiner is", () => {
  assertEquals(["\u202e", "\u200b\u200b", "\u3164", "\u00ad"].map(isValidRoomName), [
    false,
    false,
    false,
    false,
  ]);
  // A family emoji is joined by zero-width joiners: it shows. So do the format characters that
  // are drawn: the Arabic end of ayah, the Syriac abbreviation mark.
  for (const shown of ["\u{1f468}\u200d\u{1f469}\u200d\u{1f467}", "\u06dd", "\u070f"]) {
    assertEquals(isValidRoomName(shown), true, shown);
  }
});

Deno.test("an event named like an Object method is not handled, and the room goes on", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  // Published from outside (`deno task send`, Redis): no consumer defines these handlers.
  for (const type of ["valueOf", "hasOwnProperty", "constructor", "toString"]) {
    await app.layer.groupSend("chat.lobby", { type });
  }
  comm.sendJson({ message: "still open" });
  assertEquals((await comm.receiveJson()).message, "still open");
});

Deno.test("a presence backend that cannot write leaves sockets unlisted, not refused, and is said once", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("info");
  const real = app.services.presence;
  // Deno KV on a full disk, as the Workers' presence meets it.
  const full = () => Promise.reject(new Error("database or disk is full"));
  const failing = new Proxy(real, {
    get: (target, key) =>
      key === "track" || key === "untrack" ? full : Reflect.get(target, key).bind(target),
  });
  const consumer = chatConsumer(app.services.streams, failing);
  const target = { consumer, services: app.services, route: "/ws/chat/:room/" };
  const members = [];
  for (const query of ["", "?presence=1"]) {
    const comm = new Communicator(target, `/ws/chat/lobby/${query}`);
    assert((await comm.connect()).accepted, `refused: ${query}`);
    members.push(comm);
  }
  // The list can still be read: the page shows the others.
  assertEquals((await members[1].receiveJson()).type, "presence.state");
  members[0].sendJson({ message: "still on" });
  for (const member of members) assertEquals((await member.receiveJson()).message, "still on");
  for (const member of members) await member.disconnect();
  const said = captured.lines.filter((line) => line.includes("Presence unavailable"));
  assertEquals(said.length, 1, captured.lines.join("\n"));
});

Deno.test("a listing socket opened while presence could not be written still gets the list, then its changes", async () => {
  await using app = await createTestApp({ presenceGraceMs: 0 });
  const real = app.services.presence;
  let full = true;
  const failing = new Proxy(real, {
    get: (target, key) =>
      key === "track" && full
        ? () => Promise.reject(new Error("database or disk is full"))
        : Reflect.get(target, key).bind(target),
  });
  const consumer = chatConsumer(app.services.streams, failing);
  const target = { consumer, services: app.services, route: "/ws/chat/:room/" };
  const ada = new Communicator(target, "/ws/chat/lobby/?presence=1", {
    user: { username: "ada", isAuthenticated: true },
  });
  assert((await ada.connect()).accepted);
  assertEquals((await ada.receiveJson()).type, "presence.state");
  full = false; // the disk has room again
  const bob = new Communicator(target, "/ws/chat/lobby/", {
    user: { username: "bob", isAuthenticated: true },
  });
  assert((await bob.connect()).accepted);
  const diff = await ada.receiveJson();
  assertEquals([diff.type, diff.joins], ["presence.diff", ["bob"]]);
  await bob.disconnect();
  await ada.disconnect();
});

Deno.test("a message or room name holding a lone surrogate is refused: no character, and readers fail on it", async () => {
  await using app = await createTestApp();
  const comm = await join(app, "lobby");
  comm.send('{"message": "hi \\ud800 there", "ref": "r1"}'); // JSON may write one
  assertEquals(await comm.receiveJson(), {
    type: "error",
    error: "Message must be well-formed Unicode: it holds a lone surrogate",
    message: "Message must be well-formed Unicode: it holds a lone surrogate",
    ref: "r1",
  });
  assertEquals(comm.closeCode, null);
  assertEquals(["x\ud800y", "x\udc00y", "x\ufffdy"].map(isValidRoomName), [false, false, true]);
});
