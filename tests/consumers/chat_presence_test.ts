import { assert, assertEquals, assertObjectMatch } from "@std/assert";
import { Communicator, createTestServices } from "../../testing.ts";
import type { GroupStreams } from "../../mod.ts";
import type { ConsumerTarget } from "../../testing.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { chatConsumer } from "../../consumers/chat.ts";
import { chatPresenceTopic } from "../../consumers/chat_rooms.ts";
import type { Config } from "../../server/config.ts";

type Frame = Record<string, unknown>;

/** The site, and the chat consumer over its services, for sockets with a given user. */
interface Site extends AsyncDisposable {
  app: TestApp;
  target: ConsumerTarget;
}

async function site(overrides: Partial<Config> = {}): Promise<Site> {
  const app = await createTestApp({ presenceGraceMs: 0, ...overrides });
  const consumer = chatConsumer(app.services.streams, app.services.presence);
  return {
    app,
    target: { consumer, services: app.services, route: "/ws/chat/:room/" },
    async [Symbol.asyncDispose]() {
      await app[Symbol.asyncDispose]();
    },
  };
}

/** A socket in `room`; anonymous without `username`, presence frames unless `query` is "". */
async function enter(
  s: Site,
  room: string,
  username?: string,
  query = "?presence=1",
): Promise<Communicator> {
  const user = username ? { username, isAuthenticated: true } : undefined;
  const comm = new Communicator(s.target, `/ws/chat/${room}/${query}`, { user });
  const { accepted, status } = await comm.connect();
  assert(accepted, `entering "${room}" was refused with ${status}`);
  return comm;
}

async function until(comm: Communicator, predicate: (frame: Frame) => boolean): Promise<Frame> {
  while (true) {
    const frame = await comm.receiveJson();
    if (predicate(frame)) return frame;
  }
}

const names = (frame: Frame) => (frame.users as { username: string }[]).map((u) => u.username);
const diffWith = (field: "joins" | "leaves", user: string) => (frame: Frame) =>
  frame.type === "presence.diff" && (frame[field] as string[]).includes(user);

Deno.test("a room socket that asks for presence first gets who is in the room", async () => {
  await using s = await site();
  const ada = await enter(s, "lobby", "ada");
  assertEquals(await ada.receiveJson(), {
    type: "presence.state",
    users: [{ username: "ada", online: true }],
    you: "ada",
  });
  await until(ada, diffWith("joins", "ada")); // published: what a newcomer is told
  const bob = await enter(s, "lobby", "bob");
  assertEquals(names(await bob.receiveJson()), ["ada", "bob"]);
  await until(ada, diffWith("joins", "bob"));
});

Deno.test("a member who leaves the room is gone for the others, and only from that room", async () => {
  await using s = await site();
  const ada = await enter(s, "lobby", "ada");
  const bob = await enter(s, "lobby", "bob");
  const bobElsewhere = await enter(s, "elsewhere", "bob");
  await until(ada, diffWith("joins", "bob"));
  await bob.disconnect();
  const left = await until(ada, diffWith("leaves", "bob"));
  assertEquals(left.topic, chatPresenceTopic("lobby"));
  assertEquals(names(await until(bobElsewhere, (f) => f.type === "presence.state")), ["bob"]);
  assertEquals((await s.app.services.presence.state(chatPresenceTopic("elsewhere"))).online, [
    "bob",
  ]);
});

Deno.test("anonymous visitors are listed once, as Anonymous", async () => {
  await using s = await site();
  await enter(s, "lobby");
  const second = await enter(s, "lobby");
  assertEquals(names(await second.receiveJson()), ["Anonymous"]);
});

Deno.test("a socket that does not ask for presence gets chat frames only", async () => {
  await using s = await site();
  const tutorial = await enter(s, "lobby", undefined, "");
  const watcher = await enter(s, "lobby", "ada");
  await until(watcher, (f) => f.type === "presence.state");
  await enter(s, "lobby", "bob");
  await until(watcher, diffWith("joins", "bob"));
  tutorial.sendJson({ message: "hi" });
  // The tutorial's page prints every frame's `message`: the first frame must be the chat's.
  assertEquals((await tutorial.receiveJson()).message, "hi");
  // It still counts as a member for those who list them.
  const state = await s.app.services.presence.state(chatPresenceTopic("lobby"));
  assertEquals(state.online, ["Anonymous", "ada", "bob"]);
});

Deno.test("a reload within the grace period keeps the member listed without a change", async () => {
  await using s = await site({ presenceGraceMs: 60_000 });
  const watcher = await enter(s, "lobby", "ada");
  await until(watcher, (f) => f.type === "presence.state");
  const bob = await enter(s, "lobby", "bob");
  await until(watcher, diffWith("joins", "bob"));
  await bob.disconnect();
  const again = await enter(s, "lobby", "bob");
  assertEquals(names(await again.receiveJson()), ["ada", "bob"]);
  await s.app.services.presence.flush();
  assert(await watcher.receiveNothing(100), "the reload showed as a change");
});

Deno.test("presence frames come after the room's history", async () => {
  await using s = await site();
  const writer = await enter(s, "lobby", undefined, "");
  writer.sendJson({ message: "kept" });
  await writer.receiveJson();
  const reader = await enter(s, "lobby", "ada");
  assertEquals((await reader.receiveJson()).message, "kept");
  assertEquals((await reader.receiveJson()).type, "presence.state");
});

/** `streams` whose history read waits until `openGate()`; `reading` resolves when it starts. */
function slowHistory(streams: GroupStreams) {
  const gate = Promise.withResolvers<void>();
  const reading = Promise.withResolvers<void>();
  const slow = new Proxy(streams, {
    get(target, name) {
      if (name === "latest") {
        return async (group: string, count: number) => {
          reading.resolve();
          await gate.promise; // a history read that takes its time (Redis under load, say)
          return target.latest(group, count);
        };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { slow, reading: reading.promise, openGate: () => gate.resolve() };
}

Deno.test("a socket closed while it enters is refused and leaves no ghost in the room's presence", async () => {
  // No grace period: a socket that leaves is gone at once, so a ghost shows at once.
  await using services = await createTestServices({ presenceGraceMs: 0 });
  const { slow, reading, openGate } = slowHistory(services.streams);
  const consumer = chatConsumer(slow, services.presence);
  const comm = new Communicator(
    { consumer, services, route: "/ws/chat/:room/" },
    "/ws/chat/lobby/?presence=1",
  );
  const connecting = comm.connect();
  await reading;
  // What closes the room's sockets (a moderator, say) reaches this one while it enters.
  await services.layer.groupSend("chat.lobby", { type: "connection.close", code: 4000 });
  openGate();
  assertObjectMatch(await connecting, { accepted: false, status: 403 });
  await services.presence.flush(); // what is tracked is published now, not a window later
  const { online } = await services.presence.state(chatPresenceTopic("lobby"));
  assertEquals(online, [], "the refused socket is listed as online");
  assertEquals(await services.presence.list(chatPresenceTopic("lobby")), {});
});

Deno.test("a busy room does not refuse a socket whose entry is slow", async () => {
  await using services = await createTestServices();
  const { slow, reading, openGate } = slowHistory(services.streams);
  const target = {
    consumer: chatConsumer(slow, services.presence),
    services,
    route: "/ws/chat/:room/",
  };
  const entering = new Communicator(target, "/ws/chat/busy/");
  const connecting = entering.connect();
  await reading;
  // 250 messages while it enters: more than its queue of waiting events holds (100).
  for (let n = 1; n <= 250; n++) {
    await services.streams.publish("chat.busy", { type: "chat.message", message: `m${n}` });
  }
  openGate();
  assertEquals((await connecting).status, 101);
  // A fresh visitor: the room's last 50 as history, each once (what queued meanwhile is older).
  const messages: unknown[] = [];
  while (messages.length < 50) messages.push((await entering.receiveJson()).message);
  assertEquals(messages, Array.from({ length: 50 }, (_, i) => `m${i + 201}`));
  assert(await entering.receiveNothing(100), "a message came twice");
  await entering.disconnect();
});
