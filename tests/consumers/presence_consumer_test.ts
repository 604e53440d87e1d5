import { assert, assertEquals, assertObjectMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { PRESENCE_STATE, USER_ADDED } from "../../consumers/presence.ts";
import { CLOSE_EVENT } from "../../server/_connection_constants.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { SESSION_COOKIE } from "../../auth/cookies.ts";
import { sessionGroup } from "../../auth/sessions.ts";
import { ACCOUNT_EVENTS_GROUP } from "../../auth/users.ts";
import type { Config } from "../../server/config.ts";

const FAST_HASHING = { passwordIterations: 1, allowWeakPasswordHashing: true };
const LONG_GRACE = 60_000;

async function appWith(users: string[], overrides: Partial<Config> = {}): Promise<TestApp> {
  const app = await createTestApp({ ...FAST_HASHING, ...overrides });
  for (const user of users) await app.services.users.create(user, "correct horse 9");
  return app;
}

async function logIn(app: TestApp, username: string): Promise<string> {
  return (await app.services.sessions.create(username)).id;
}

async function openPresence(app: TestApp, session: string, query = ""): Promise<Communicator> {
  const comm = new Communicator(app, `/ws/presence/state/${query}`, {
    headers: { cookie: `${SESSION_COOKIE}=${session}` },
  });
  const { accepted, status } = await comm.connect();
  assert(accepted, `the presence socket was refused with ${status}`);
  return comm;
}

type Frame = Record<string, unknown>;

/** Frames until one matches; diffs arrive after a short coalescing window. */
async function until(comm: Communicator, predicate: (frame: Frame) => boolean): Promise<Frame[]> {
  const seen: Frame[] = [];
  while (true) {
    const frame = await comm.receiveJson();
    seen.push(frame);
    if (predicate(frame)) return seen;
  }
}

const joins = (user: string) => (frame: Frame) =>
  frame.type === "presence.diff" && (frame.joins as string[]).includes(user);
const leaves = (user: string) => (frame: Frame) =>
  frame.type === "presence.diff" && (frame.leaves as string[]).includes(user);

Deno.test("an anonymous visitor cannot open the presence socket", async () => {
  await using app = await appWith([]);
  const comm = new Communicator(app, "/ws/presence/state/");
  assertObjectMatch(await comm.connect(), { accepted: false, status: 403 });
});

Deno.test("a new presence socket first gets every user with their status", async () => {
  await using app = await appWith(["ada", "bob", "cy"]);
  const ada = await openPresence(app, await logIn(app, "ada"));
  const state = await ada.receiveJson();
  assertEquals(state.type, PRESENCE_STATE);
  assertEquals(state.users, [
    { username: "ada", online: true },
    { username: "bob", online: false },
    { username: "cy", online: false },
  ]);
  assertEquals(state.online_count, 1);
  assertEquals(state.you, "ada", "whom the socket is signed in as");
});

Deno.test("after the state, a socket gets diffs as others come and go", async () => {
  await using app = await appWith(["ada", "bob"], { presenceGraceMs: 0 });
  const ada = await openPresence(app, await logIn(app, "ada"));
  assertEquals((await ada.receiveJson()).type, PRESENCE_STATE);
  await until(ada, joins("ada")); // her own join, published after the coalescing window
  const bob = await openPresence(app, await logIn(app, "bob"));
  const diff = (await until(ada, joins("bob"))).at(-1)!;
  assertEquals([diff.joins, diff.leaves], [["bob"], []]);
  const bobState = await bob.receiveJson();
  assertEquals(bobState.online_count, 2, "bob sees ada, who was online before him");
  await bob.disconnect();
  await until(ada, leaves("bob"));
});

Deno.test("a user with two tabs stays online until the last one closes", async () => {
  await using app = await appWith(["ada", "bob", "cy"], { presenceGraceMs: 0 });
  const ada = await openPresence(app, await logIn(app, "ada"));
  const bobSession = await logIn(app, "bob");
  const [tab1, tab2] = [await openPresence(app, bobSession), await openPresence(app, bobSession)];
  await until(ada, joins("bob"));
  await tab1.disconnect();
  await openPresence(app, await logIn(app, "cy"));
  const meanwhile = await until(ada, joins("cy"));
  assert(!meanwhile.some(leaves("bob")), "bob flickered offline while a tab was open");
  await tab2.disconnect();
  await until(ada, leaves("bob"));
});

Deno.test("a closed tab keeps its user online during the grace period", async () => {
  await using app = await appWith(["ada", "bob", "cy"], { presenceGraceMs: LONG_GRACE });
  const ada = await openPresence(app, await logIn(app, "ada"));
  const bob = await openPresence(app, await logIn(app, "bob"));
  await until(ada, joins("bob"));
  await bob.disconnect(CloseCode.GOING_AWAY);
  const cy = await openPresence(app, await logIn(app, "cy"));
  const meanwhile = await until(ada, joins("cy"));
  assert(!meanwhile.some(leaves("bob")), "bob went offline without a grace period");
  const state = await cy.receiveJson();
  assertEquals(state.online_count, 3);
});

Deno.test("logging out ends presence at once, tabs in their grace period included", async () => {
  await using app = await appWith(["ada", "bob"], { presenceGraceMs: LONG_GRACE });
  const ada = await openPresence(app, await logIn(app, "ada"));
  const session = await logIn(app, "bob");
  const [closedTab, openTab] = [await openPresence(app, session), await openPresence(app, session)];
  await until(ada, joins("bob"));
  await closedTab.disconnect(CloseCode.GOING_AWAY);
  // What POST /log_out/ does: delete the session, then close its sockets with 4001.
  await app.services.sessions.delete(session);
  const event = { type: CLOSE_EVENT, code: CloseCode.LOGGED_OUT, reason: "Logged out" };
  await app.layer.groupSend(await sessionGroup(session), event);
  assertEquals(await openTab.waitForClose(), CloseCode.LOGGED_OUT);
  await until(ada, leaves("bob"));
});

Deno.test("a new sign-up is added to every open list", async () => {
  await using app = await appWith(["ada"]);
  const ada = await openPresence(app, await logIn(app, "ada"));
  await ada.receiveJson();
  await app.layer.groupSend(ACCOUNT_EVENTS_GROUP, { type: "account.created", username: "dee" });
  assertEquals(await ada.receiveJson(), { type: USER_ADDED, username: "dee" });
});

Deno.test("a page without the list keeps its user online but gets no frames", async () => {
  await using app = await appWith(["ada", "bob"]);
  const ada = await openPresence(app, await logIn(app, "ada"));
  await ada.receiveJson();
  const bob = await openPresence(app, await logIn(app, "bob"), "?list=0");
  await until(ada, joins("bob"));
  await app.layer.groupSend(ACCOUNT_EVENTS_GROUP, { type: "account.created", username: "dee" });
  await until(ada, (frame) => frame.type === USER_ADDED);
  assert(await bob.receiveNothing(), "a track-only socket received frames");
});

Deno.test("a tab closed while the session store is away still goes offline after the grace", async () => {
  await using app = await appWith(["ada", "bob"], { presenceGraceMs: 50 });
  const ada = await openPresence(app, await logIn(app, "ada"));
  const bob = await openPresence(app, await logIn(app, "bob"));
  await until(ada, joins("bob"));
  // Redis restarting, say: the store cannot say whether bob's session still exists.
  const sessions = app.services.sessions;
  const get = sessions.get;
  sessions.get = () => Promise.reject(new Error("The client is offline"));
  try {
    await bob.disconnect();
    await until(ada, leaves("bob"));
  } finally {
    sessions.get = get;
  }
  await ada.disconnect();
});

Deno.test("a socket that missed diffs by reading too slowly gets the whole list again once it caught up", async () => {
  await using app = await appWith(["ada", "bob"], { presenceGraceMs: 0 });
  const ada = await openPresence(app, await logIn(app, "ada"));
  assertEquals((await ada.receiveJson()).type, PRESENCE_STATE);
  await until(ada, joins("ada"));
  ada.socket.bufferedAmount = 1_000_000; // it stops reading: what comes now is dropped
  // Sign-ups first (the socket checks its backlog every 8th event), then bob comes online.
  const signUps = Array.from({ length: 16 }, (_, i) => `user${String(i).padStart(2, "0")}`);
  for (const user of signUps) {
    await app.services.users.create(user, "correct horse 9");
    // What the sign-up page publishes.
    await app.layer.groupSend(ACCOUNT_EVENTS_GROUP, { type: "account.created", username: user });
  }
  const bob = await openPresence(app, await logIn(app, "bob"));
  await bob.receiveJson(); // bob's state: his join is published
  await until(bob, joins("bob"));
  ada.socket.bufferedAmount = 0; // it read what waited
  // Else ada's page would show bob offline until a later diff named him.
  const state = (await until(ada, (frame) => frame.type === PRESENCE_STATE)).at(-1)!;
  const online = (state.users as { username: string; online: boolean }[])
    .filter((user) => user.online).map((user) => user.username);
  assertEquals(online, ["ada", "bob"]);
  assertEquals((state.users as unknown[]).length, 2 + signUps.length);
  await bob.disconnect();
  await ada.disconnect();
});
