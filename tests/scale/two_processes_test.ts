/**
 * Two real server processes (`deno run main.ts`) on two ports, sharing one Redis with
 * `LAYER=redis`, behave as one server: chat, presence, sessions and history.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { createClient } from "redis";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { diff, member, PASSWORD, presenceSocket, WAIT } from "./_clients.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

/** Two processes of one app: one Redis, one prefix. */
async function twoServers(): Promise<{ a: ServerProcess; b: ServerProcess; prefix: string }> {
  const prefix = uniquePrefix("two");
  const env = { LAYER: "redis", REDIS_URL: redis!.url, REDIS_PREFIX: prefix };
  const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  return { a, b, prefix };
}

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !available, fn });
}

const room = (path: string) => `/ws/chat/${encodeURIComponent(path)}/`;

test("two clients on two processes chat both ways", async () => {
  const { a, b } = await twoServers();
  await using _a = a;
  await using _b = b;
  // The start line says the linger that sets their messages' latency under load.
  assertMatch(
    a.output(),
    /Serving the chat at \S+ \(layer: redis, data: Redis, Redis linger: 10 ms\)/,
  );
  const onA = await TestSocket.open(a.wsUrl(room("café au lait")));
  const onB = await TestSocket.open(b.wsUrl(room("café au lait")));
  onA.sendJson({ message: "hello from A" });
  const atB = await onB.nextMatching((f) => f.message === "hello from A", WAIT);
  assertEquals(atB.room, "café au lait");
  onB.sendJson({ message: "hello from B" });
  onB.sendJson({ message: "marker" });
  // Every message once, in order, the sender's own included: never once per process.
  assertEquals(await messagesUntil(onA, "marker"), ["hello from A", "hello from B", "marker"]);
  assertEquals(await messagesUntil(onB, "marker"), ["hello from B", "marker"]);
  await onA.close();
  await onB.close();
});

test("history written via A is shown via B", async () => {
  const { a, b } = await twoServers();
  await using _a = a;
  await using _b = b;
  const writer = await TestSocket.open(a.wsUrl(room("lobby")));
  writer.sendJson({ message: "kept for later" });
  await writer.nextMatching((f) => f.message === "kept for later", WAIT);
  await writer.close();
  // History is written just after delivery: entering B may be a moment early, so enter
  // until the message is there (a probe's echo marks the end of the history frames).
  let history: unknown[] = [];
  for (let attempt = 0; attempt < 20 && !history.includes("kept for later"); attempt++) {
    history = await historyShown(b.wsUrl(room("lobby")), `probe ${attempt}`);
  }
  assertEquals(history[0], "kept for later", "B did not show what was written via A");
});

test("the session cookie from a log-in via A works on B", async () => {
  const { a, b } = await twoServers();
  await using _a = a;
  await using _b = b;
  const viaA = new WebClient(a.url);
  await viaA.signUp("ada", PASSWORD);
  await viaA.logIn("ada", PASSWORD);
  const viaB = new WebClient(b.url);
  for (const [name, value] of cookiesOf(viaA)) viaB.jar.set(name, value);
  const response = await viaB.get("/");
  const page = await response.text();
  assertEquals(response.status, 200, "B sent the logged-in user to log in");
  assertMatch(page, /data-username="ada"/);
  assertMatch(page, />Log out</);
});

test("a user online via A shows Online on B, and Offline when the last tab closes", async () => {
  const { a, b } = await twoServers();
  await using _a = a;
  await using _b = b;
  const ada = await member(a.url, "ada");
  const bob = await member(b.url, "bob");
  const watcher = await presenceSocket(b.url, bob);
  const tab1 = await presenceSocket(a.url, ada);
  const tab2 = await presenceSocket(b.url, ada); // a second tab, on the other process
  await watcher.nextMatching(diff("joins", "ada"), WAIT);
  await tab1.close();
  await tab2.close();
  await watcher.nextMatching(diff("leaves", "ada"), WAIT);
  await watcher.close();
});

test("a room's members on two processes both see 2 members", async () => {
  const { a, b } = await twoServers();
  await using _a = a;
  await using _b = b;
  const ada = await member(a.url, "ada");
  const bob = await member(b.url, "bob");
  const roomSocket = (url: string, client: WebClient) =>
    TestSocket.open(`${url.replace(/^http/, "ws")}${room("lobby")}?presence=1`, {
      headers: { ...client.socketHeaders(), origin: url },
    });
  const onA = await roomSocket(a.url, ada);
  const onB = await roomSocket(b.url, bob);
  const shownOnA = new Set<string>();
  assertEquals(await membersUntil(onA, 2, shownOnA), ["ada", "bob"]);
  assertEquals(await membersUntil(onB, 2), ["ada", "bob"]);
  await onB.close();
  assertEquals(await membersUntil(onA, 1, shownOnA), ["ada"]);
  await onA.close();
});

/**
 * The room's members a socket shows (its state frame, then diffs) once there are `count`;
 * `members` carries what it showed across calls.
 */
async function membersUntil(
  socket: TestSocket,
  count: number,
  members = new Set<string>(),
): Promise<string[]> {
  let stated = members.size > 0;
  while (!stated || members.size !== count) {
    const frame = await socket.nextJson(WAIT);
    if (frame.type === "presence.state") {
      stated = true;
      members.clear();
      for (const user of frame.users as { username: string }[]) members.add(user.username);
    } else if (frame.type === "presence.diff") {
      for (const user of frame.joins as string[]) members.add(user);
      for (const user of frame.leaves as string[]) members.delete(user);
    }
  }
  return [...members].sort();
}

test("a raw PUBLISH on Redis appears in the chat room on every process", async () => {
  const { a, b, prefix } = await twoServers();
  await using _a = a;
  await using _b = b;
  const onA = await TestSocket.open(a.wsUrl(room("lobby")));
  const onB = await TestSocket.open(b.wsUrl(room("lobby")));
  const publisher = createClient({ url: redis!.url });
  await publisher.connect();
  try {
    // What `redis-cli PUBLISH <prefix>:group:chat.lobby '<json>'` sends, byte for byte.
    const raw = '{"type":"chat.message","message":{"message":"hi","author":"bot"}}';
    assertEquals(await publisher.publish(`${prefix}:group:chat.lobby`, raw), 2);
  } finally {
    await publisher.close();
  }
  for (const socket of [onA, onB]) {
    const frame = await socket.nextMatching((f) => f.message === "hi", WAIT);
    assertEquals([frame.author, frame.room, frame.type], ["bot", "lobby", "chat.message"]);
    assertMatch(String(frame.id), /\S/);
    await socket.close();
  }
});

test("deno task send with LAYER=redis reaches the room on both processes", async () => {
  const { a, b, prefix } = await twoServers();
  await using _a = a;
  await using _b = b;
  const onA = await TestSocket.open(a.wsUrl(room("東京")));
  const onB = await TestSocket.open(b.wsUrl(room("東京")));
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "send", "東京", '{"message":"Deploy done","author":"ci"}'],
    env: { LAYER: "redis", REDIS_URL: redis!.url, REDIS_PREFIX: prefix },
    stdout: "piped",
    stderr: "null",
  }).output();
  assertEquals(code, 0);
  assertMatch(new TextDecoder().decode(stdout), /2 process\(es\) subscribed/);
  for (const socket of [onA, onB]) {
    assertEquals(
      (await socket.nextMatching((f) => f.message === "Deploy done", WAIT)).author,
      "ci",
    );
    await socket.close();
  }
});

/** What a socket entering a room is shown from its history; a probe marks the end. */
async function historyShown(url: string, probe: string): Promise<unknown[]> {
  const reader = await TestSocket.open(url);
  reader.sendJson({ message: probe });
  const shown: unknown[] = [];
  while (true) {
    const frame = await reader.nextJson(WAIT);
    if (frame.history !== true) break; // the probe's own echo: the history is over
    shown.push(frame.message);
  }
  await reader.close();
  return shown;
}

/** The chat messages a socket receives, in order, up to and including `last`. */
async function messagesUntil(socket: TestSocket, last: string): Promise<unknown[]> {
  const seen: unknown[] = [];
  while (seen.at(-1) !== last) seen.push((await socket.nextJson(WAIT)).message);
  return seen;
}

function cookiesOf(client: WebClient): [string, string][] {
  const header = client.jar.header() ?? "";
  return header.split("; ").filter(Boolean).map((pair) => {
    const eq = pair.indexOf("=");
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
}
