/**
 * Drain on deploy, end to end: two server processes on one private redis-server, behind
 * nothing but their ports. Users chat on A; A gets SIGTERM. Every socket on A closes with 1012,
 * spread over the drain window; the clients reconnect to B; A exits by itself within the window
 * plus 2 s; nobody who came back shows Offline; what was said is not lost.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { redisAvailability, startRedisServer } from "../_support/redis.ts";
import type { WebClient } from "../_support/cookie_jar.ts";
import { Waiters } from "../_support/waiters.ts";
import { member, WAIT } from "./_clients.ts";
import { type ServerProcess, startServerProcess } from "./_process.ts";

const { available, reason } = await redisAvailability({ privateServer: true });
const WINDOW_MS = 1500;
const GRACE_MS = 3000;
const USERS = 6;

type Frame = Record<string, unknown>;

/** One socket that keeps every frame, and when and how it closed. */
class Collecting {
  readonly frames: Frame[] = [];
  /** When each frame arrived (`performance.now()`). */
  readonly times: number[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; at: number }>;
  readonly socket: WebSocket;

  constructor(url: string, headers: Record<string, string>, waiters: Waiters) {
    // @ts-ignore: Deno accepts a `headers` option on its WebSocket client
    this.socket = new WebSocket(url, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => resolve();
      this.socket.onerror = () => reject(new Error(`WebSocket handshake to ${url} failed`));
    });
    this.closed = new Promise((resolve) => {
      this.socket.onclose = (event) => {
        resolve({ code: event.code, at: performance.now() });
        waiters.notify();
      };
    });
    this.socket.onmessage = (event) => {
      for (const line of String(event.data).split("\n")) {
        this.frames.push(JSON.parse(line));
        this.times.push(performance.now());
      }
      waiters.notify();
    };
  }

  send(value: unknown): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(value));
  }

  close(): void {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close(1000);
  }
}

/** A signed-in user with a chat socket (and a presence socket) on A, moving to B on 1012. */
class ChatUser {
  readonly sockets: { chat: Collecting; presence: Collecting }[] = [];
  readonly sent: string[] = [];
  /** How the first server's sockets closed: the chat socket's, then the presence socket's. */
  readonly closes: { code: number; at: number }[] = [];
  #epoch: string | null = null;
  #offset = 0;

  constructor(
    readonly name: string,
    readonly client: WebClient,
    readonly waiters: Waiters,
    readonly recovery: boolean,
  ) {}

  /** Opens both sockets on `server`; with `follow`, moves them to `follow` when closed with 1012. */
  async connect(server: ServerProcess, follow: ServerProcess | null): Promise<void> {
    const headers = { ...this.client.socketHeaders(), origin: server.url };
    const query = this.#epoch !== null
      ? `?epoch=${encodeURIComponent(this.#epoch)}&since=${this.#offset}`
      : this.recovery
      ? "?stream=1"
      : "";
    const pair = {
      chat: new Collecting(server.wsUrl(`/ws/chat/lobby/${query}`), headers, this.waiters),
      presence: new Collecting(server.wsUrl("/ws/presence/state/"), headers, this.waiters),
    };
    this.sockets.push(pair);
    pair.chat.socket.addEventListener("message", () => this.#track(pair.chat));
    await Promise.all([pair.chat.opened, pair.presence.opened]);
    if (follow === null) return;
    void Promise.all([pair.chat.closed, pair.presence.closed]).then(async (closes) => {
      this.closes.push(...closes);
      // As a reconnecting client does: on any close it did not ask for.
      if (closes.every((close) => close.code !== 1000)) await this.connect(follow, null);
    });
  }

  get chat(): Collecting {
    return this.sockets.at(-1)!.chat;
  }

  /** Says `text` while still on the first server (A); false once that socket is closing. */
  sayOnFirst(text: string): boolean {
    if (this.sockets.length > 1 || this.chat.socket.readyState !== WebSocket.OPEN) return false;
    this.say(text);
    return true;
  }

  /** Says `text`, its own `ref`; with the delivery protocol the server acknowledges it. */
  say(text: string): void {
    if (this.chat.socket.readyState !== WebSocket.OPEN) return;
    this.chat.send(this.recovery ? { message: text, ref: text, ack: true } : { message: text });
    this.sent.push(text);
  }

  /**
   * What a careful client does once it is back and has recovered what it missed: says again
   * each message that was neither acknowledged nor heard (it went down with the socket).
   */
  resendUnconfirmed(): string[] {
    const acked = new Set(
      this.sockets.flatMap(({ chat }) => chat.frames.filter((f) => f.type === "ack")).map((f) =>
        f.ref
      ),
    );
    const heard = new Set(this.received());
    const lost = [...new Set(this.sent)].filter((text) => !acked.has(text) && !heard.has(text));
    for (const text of lost) this.say(text);
    return lost;
  }

  /** Every chat message this user received live or recovered, by text (history excluded). */
  received(): string[] {
    return this.sockets.flatMap(({ chat }) =>
      chat.frames.filter((f) => f.type === "chat.message" && !f.history).map((f) =>
        String(f.message)
      )
    );
  }

  #track(chat: Collecting): void {
    for (const frame of chat.frames) {
      if (frame.type === "recovered" && typeof frame.epoch === "string") this.#epoch = frame.epoch;
      if (typeof frame.offset === "number" && frame.type !== "recovered") {
        this.#offset = Math.max(this.#offset, frame.offset);
      }
      if (frame.type === "recovered" && typeof frame.offset === "number" && frame.fresh) {
        this.#offset = frame.offset;
      }
    }
  }
}

function presenceDiffs(socket: Collecting): Frame[] {
  return socket.frames.filter((frame) => frame.type === "presence.diff");
}

function leavesIn(diffs: Frame[]): string[] {
  return diffs.flatMap((diff) => diff.leaves as string[]);
}

/** Whether the chat route speaks the delivery protocol (`?stream=1`, offsets, recovery). */
async function recoverySupported(
  server: ServerProcess,
  headers: Record<string, string>,
  waiters: Waiters,
): Promise<boolean> {
  // As a user who stays in the room, so that its leaving is not a presence change.
  const probe = new Collecting(server.wsUrl("/ws/chat/lobby/?stream=1"), headers, waiters);
  await probe.opened;
  // The room has history by now, so a server without the protocol sends a history frame first.
  await waiters.waitFor(() => probe.frames[0], WAIT, () => "no first frame on the probe");
  probe.close();
  return probe.frames[0].type === "recovered";
}

Deno.test({
  name: "SIGTERM drains A: 1012 spread over the window, everyone moves to B, nobody goes Offline",
  ignore: !available,
  fn: async () => {
    if (!available) console.log(`skipped: ${reason}`);
    await using redis = await startRedisServer();
    const env = {
      LAYER: "redis",
      REDIS_URL: redis.url,
      REDIS_PREFIX: "drain",
      DRAIN_WINDOW_MS: String(WINDOW_MS),
      PRESENCE_GRACE_MS: String(GRACE_MS),
    };
    await using a = await startServerProcess(env);
    await using b = await startServerProcess(env);
    const waiters = new Waiters();
    const until = <T>(check: () => T | undefined | false, what: string, ms = WAIT) =>
      waiters.waitFor(() => check() || undefined, ms, () => `Timed out waiting for ${what}`);

    // A watcher on B: the site-wide list and the room, with the room's presence.
    const watch = await member(b.url, "watcher");
    const watchHeaders = { ...watch.socketHeaders(), origin: b.url };
    const sitePresence = new Collecting(b.wsUrl("/ws/presence/state/"), watchHeaders, waiters);
    const room = new Collecting(b.wsUrl("/ws/chat/lobby/?presence=1"), watchHeaders, waiters);
    await Promise.all([sitePresence.opened, room.opened]);
    room.send({ message: "opening line" });
    await until(() => room.frames.some((f) => f.message === "opening line"), "the opening line");
    const recovery = await recoverySupported(b, watchHeaders, waiters);

    // Users on A; "zed" opens last (so is drained last) and does not come back.
    const names = [...Array(USERS).keys()].map((n) => `user${n}`);
    const users = await Promise.all(
      names.map(async (name) => new ChatUser(name, await member(a.url, name), waiters, recovery)),
    );
    for (const user of users) await user.connect(a, b);
    const zed = new ChatUser("zed", await member(a.url, "zed"), waiters, recovery);
    await zed.connect(a, null);
    const everyone = [...names, "zed"];
    await until(() => {
      const joined = new Set(presenceDiffs(sitePresence).flatMap((d) => d.joins as string[]));
      return everyone.every((name) => joined.has(name));
    }, "every user's join on B");

    for (const user of users) user.say(`before ${user.name}`);
    await until(
      () => users.every((u) => room.frames.some((f) => f.message === `before ${u.name}`)),
      "the messages sent before the drain",
    );

    // Chatter on A until each user's socket closes: every user says something every 150 ms
    // (few enough that all of it stays within the 50 messages of the room's history).
    let n = 0;
    const chatter = setInterval(() => {
      n++;
      for (const user of users) user.sayOnFirst(`${user.name} #${n}`);
    }, 150);
    const sigterm = performance.now();
    a.signal("SIGTERM");
    await a.waitForOutput(/Drain: new connections are refused/);
    const during = await fetch(`${a.url}/chat/`);
    await during.body?.cancel();
    const status = await a.status;
    const exitedAfter = performance.now() - sigterm;

    await until(
      () => users.every((u) => u.sockets.length === 2),
      `every user reconnected to B (${JSON.stringify(users.map((u) => u.closes))})`,
    );
    await Promise.all(users.map((u) => Promise.all([u.chat.opened, u.sockets[1].presence.opened])));
    clearInterval(chatter);
    // One last word each on B, which every user must hear.
    for (const user of users) user.say(`after ${user.name}`);
    for (const user of users) {
      await until(
        () => users.every((other) => user.received().includes(`after ${other.name}`)),
        `${user.name} hearing everyone's last word on B`,
      );
    }
    // A message sent as its socket closed may have gone down with it: with acks the sender knows.
    const resent = recovery ? users.flatMap((user) => user.resendUnconfirmed()) : [];
    await until(
      () => resent.every((text) => room.frames.some((f) => f.message === text)),
      "the resent messages",
    );
    // zed did not come back: the leave arrives once the grace period handed to B ends.
    await until(() => leavesIn(presenceDiffs(sitePresence)).includes("zed"), "zed's leave", 15_000);
    await until(() => leavesIn(presenceDiffs(room)).includes("zed"), "zed's leave from the room");

    // 1. Stopped by itself, in time, having done every stage.
    assertEquals(status.code, 0);
    const output = a.output();
    assertMatch(output, new RegExp(`SIGTERM: draining ${2 * (USERS + 1)} connections over 1.5 s`));
    assertMatch(output, /Drain: 14 connections closed with 1012/);
    assertMatch(output, /Drain: presence handed over/);
    assertMatch(output, /Drain: pending writes flushed/);
    assertMatch(output, /SIGTERM: stopped/);
    assert(!/exiting now/.test(output), `A hit its deadline:\n${output}`);
    assert(exitedAfter < WINDOW_MS + 2000, `A exited ${exitedAfter.toFixed(0)} ms after SIGTERM`);
    assertEquals(during.status, 503, "A still accepted a request while draining");

    // 2. Every socket on A closed with 1012, spread over the window.
    // A presence socket (it never sends) always sees 1012. A chat socket that is sending at the
    // moment of its close may lose the close frame, in Deno (0 in Deno's client, 1006 in a
    // browser): the server sent 1012, and the client reconnects all the same.
    const pairs = [...users.map((u) => u.closes), await zedCloses(zed)];
    const [chatCloses, presenceCloses] = [0, 1].map((i) => pairs.map((pair) => pair[i]));
    assertEquals(presenceCloses.map((c) => c.code), presenceCloses.map(() => 1012));
    for (const { code } of chatCloses) {
      assert([1012, 0, 1006].includes(code), `closed with ${code}`);
    }
    const lostFrames = chatCloses.filter((c) => c.code !== 1012).length;
    const closes = [...chatCloses, ...presenceCloses];
    const times = closes.map((c) => c.at).sort((x, y) => x - y);
    const spread = times.at(-1)! - times[0];
    assert(
      spread >= 0.5 * WINDOW_MS,
      `closes spread over ${spread.toFixed(0)} ms of a ${WINDOW_MS} ms window`,
    );

    // 3. Nobody who came back went Offline, on the site list or in the room.
    assertEquals(leavesIn(presenceDiffs(sitePresence)), ["zed"]);
    assertEquals(leavesIn(presenceDiffs(room)), ["zed"]);
    const zedClosed = (await zed.sockets[0].presence.closed).at;
    const zedLeft = sitePresence.times[
      sitePresence.frames.findIndex((f) =>
        f.type === "presence.diff" && (f.leaves as string[]).includes("zed")
      )
    ];
    assert(
      zedLeft - zedClosed >= 0.5 * GRACE_MS,
      `zed left ${(zedLeft - zedClosed).toFixed(0)} ms after his socket closed`,
    );

    // 4. Nothing lost: everything the room heard, before and during the drain, is in B's
    // history, in order; each user heard each message once (all of them with recovery).
    const heard = room.frames.filter((f) => f.type === "chat.message" && !f.history)
      .map((f) => String(f.message));
    assertEquals(new Set(heard).size, heard.length, "the room heard a message twice");
    assert(heard.length <= 50, `${heard.length} messages: more than the history holds`);
    const fresh = new Collecting(b.wsUrl("/ws/chat/lobby/"), { origin: b.url }, waiters);
    await fresh.opened;
    const history = () =>
      fresh.frames.filter((f) => f.history && f.type === "chat.message").map((f) => f.message);
    await until(() => history().includes(heard.at(-1)), "the history on B");
    // As sets: the room hears in the broker's order, history keeps the senders' clocks' order.
    const stored = history().slice(-heard.length).map(String).sort();
    assertEquals(stored, [...heard].sort(), "B's history lacks what the room heard");
    let missed = 0;
    for (const user of users) {
      const got = user.received();
      assertEquals(new Set(got).size, got.length, `${user.name} got a message twice`);
      const since = heard.indexOf(`before ${users[0].name}`);
      const expected = heard.slice(since).filter((text) => text !== "opening line");
      const gap = expected.filter((text) => !got.includes(text));
      if (recovery) assertEquals(gap, [], `${user.name} missed messages`);
      missed += gap.length;
    }
    const lost = [...new Set(users.flatMap((u) => u.sent))].filter((text) => !heard.includes(text));
    if (recovery) assertEquals(lost, [], "messages said and never heard by the room");
    console.log(
      `drain: ${closes.length} closes over ${spread.toFixed(0)} ms (window ${WINDOW_MS}), ` +
        `${lostFrames} chat close frame(s) lost in transit, ` +
        `A exited after ${exitedAfter.toFixed(0)} ms, ${heard.length} messages in the room, ` +
        `${resent.length} resent for want of an ack, ${lost.length} lost, ` +
        `${missed} missed during reconnects (${
          recovery ? "recovery on" : "no recovery protocol in the tree"
        })`,
    );

    const all = [
      sitePresence,
      room,
      fresh,
      ...users.flatMap((u) => u.sockets.flatMap((p) => [p.chat, p.presence])),
    ];
    for (const socket of all) socket.close();
    await Promise.all(all.map((socket) => socket.closed));
  },
});

async function zedCloses(zed: ChatUser): Promise<{ code: number; at: number }[]> {
  const [pair] = zed.sockets;
  return await Promise.all([pair.chat.closed, pair.presence.closed]);
}

Deno.test("a lone memory process's drain says its presence closed, not that it was handed over", async () => {
  await using server = await startServerProcess({ DRAIN_WINDOW_MS: "100" });
  server.signal("SIGTERM");
  assertEquals((await server.status).code, 0);
  assertMatch(server.output(), /Drain: presence closed \(it is this process's own\)/);
  assert(!/handed over/.test(server.output()), server.output());
});
