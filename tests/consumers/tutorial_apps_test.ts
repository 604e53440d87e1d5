/**
 * The tutorial apps in-process: RealPython's user list (`/users/`), the online presence
 * indicator (`/ws/presence/`), the AuthMiddlewareStack echo (`/ws/myapp/<id>/`) and the group
 * chat of Wu Peiqi's notes (`/ws/<group>/`), each point of their protocols and refusals.
 */
import { RELAY_MESSAGE, relayGroup } from "../../consumers/group_relay.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import { assert, assertEquals, assertObjectMatch, assertStringIncludes } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { CLOSE_EVENT, CloseCode, type Config, SESSION_COOKIE, sessionGroup } from "../../mod.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { PRESENCE_INDICATOR_PATH, USER_LIST_PATH } from "../../routes/tutorials.ts";

const FAST_HASHING = { passwordIterations: 1, allowWeakPasswordHashing: true };
const LONG_GRACE = 60_000;

async function appWith(users: string[], overrides: Partial<Config> = {}): Promise<TestApp> {
  const app = await createTestApp({ ...FAST_HASHING, presenceGraceMs: 0, ...overrides });
  for (const user of users) await app.services.users.create(user, "correct horse 9");
  return app;
}

async function logIn(app: TestApp, username: string): Promise<string> {
  return (await app.services.sessions.create(username)).id;
}

function cookie(session: string): HeadersInit {
  return { cookie: `${SESSION_COOKIE}=${session}` };
}

async function open(app: TestApp, path: string, session: string): Promise<Communicator> {
  const comm = new Communicator(app, path, { headers: cookie(session) });
  const { accepted, status } = await comm.connect();
  assert(accepted, `${path} was refused with ${status}`);
  return comm;
}

/** What POST /log_out/ does: delete the session, then close its sockets with 4001. */
async function logOut(app: TestApp, session: string): Promise<void> {
  await app.services.sessions.delete(session);
  const event = { type: CLOSE_EVENT, code: CloseCode.LOGGED_OUT, reason: "Logged out" };
  await app.layer.groupSend(await sessionGroup(session), event);
}

async function get(app: TestApp, path: string, session?: string): Promise<Response> {
  const headers = session === undefined ? {} : cookie(session);
  return await app.handle(new Request(`http://localhost${path}`, { headers }));
}

const loggedIn = (username: string, is_logged_in: boolean) => ({ username, is_logged_in });

// RealPython: WS /users/

Deno.test("realpython: an anonymous visitor is refused at the handshake", async () => {
  await using app = await appWith([]);
  const comm = new Communicator(app, "/users/");
  assertObjectMatch(await comm.connect(), { accepted: false, status: 403 });
});

Deno.test("realpython: a user coming online is announced to everyone, themselves too", async () => {
  await using app = await appWith(["ada", "bob"]);
  const ada = await open(app, "/users/", await logIn(app, "ada"));
  const own = JSON.parse(await ada.receive() as string);
  // Exactly the tutorial's two keys, in its order.
  assertEquals(Object.keys(own), ["username", "is_logged_in"]);
  assertEquals(own, loggedIn("ada", true));
  const bob = await open(app, "/users/", await logIn(app, "bob"));
  assertEquals(await ada.receiveJson(), loggedIn("bob", true));
  assertEquals(await bob.receiveJson(), loggedIn("bob", true));
});

Deno.test("realpython: a second tab hears its own user, the others hear nothing", async () => {
  await using app = await appWith(["ada", "bob"]);
  const ada = await open(app, "/users/", await logIn(app, "ada"));
  assertEquals(await ada.receiveJson(), loggedIn("ada", true));
  const bobSession = await logIn(app, "bob");
  const bob1 = await open(app, "/users/", bobSession);
  assertEquals(await ada.receiveJson(), loggedIn("bob", true));
  const bob2 = await open(app, "/users/", bobSession);
  assertEquals(await bob2.receiveJson(), loggedIn("bob", true));
  assert(await ada.receiveNothing(200), "a second tab was announced as a new user");
  await bob1.disconnect();
  assert(await ada.receiveNothing(200), "bob went offline with a tab still open");
  await bob2.disconnect();
  assertEquals(await ada.receiveJson(), loggedIn("bob", false));
});

Deno.test("realpython: logging out takes the user offline at once, grace or not", async () => {
  await using app = await appWith(["ada", "bob"], { presenceGraceMs: LONG_GRACE });
  const ada = await open(app, "/users/", await logIn(app, "ada"));
  assertEquals(await ada.receiveJson(), loggedIn("ada", true));
  const bobSession = await logIn(app, "bob");
  const bob = await open(app, "/users/", bobSession);
  assertEquals(await ada.receiveJson(), loggedIn("bob", true));
  await logOut(app, bobSession);
  assertEquals(await bob.waitForClose(), CloseCode.LOGGED_OUT);
  assertEquals(await ada.receiveJson(), loggedIn("bob", false));
});

Deno.test("realpython: a closed tab keeps its user online during the grace period", async () => {
  await using app = await appWith(["ada", "bob"], { presenceGraceMs: LONG_GRACE });
  const ada = await open(app, "/users/", await logIn(app, "ada"));
  assertEquals(await ada.receiveJson(), loggedIn("ada", true));
  const bob = await open(app, "/users/", await logIn(app, "bob"));
  assertEquals(await ada.receiveJson(), loggedIn("bob", true));
  await bob.disconnect(CloseCode.GOING_AWAY);
  assert(await ada.receiveNothing(200), "a reload would have flickered bob offline");
});

Deno.test("realpython: the page lists every user and loads the tutorial's script", async () => {
  await using app = await appWith(["ada", "bob", "cy"]);
  const bob = await open(app, "/users/", await logIn(app, "bob"));
  await bob.receiveJson(); // bob's join is published: the page can see it
  const response = await get(app, USER_LIST_PATH, await logIn(app, "ada"));
  assertEquals(response.status, 200);
  const page = await response.text();
  assertStringIncludes(page, `<li data-username="ada">ada: Online</li>`);
  assertStringIncludes(page, `<li data-username="bob">bob: Online</li>`);
  assertStringIncludes(page, `<li data-username="cy">cy: Offline</li>`);
  assertStringIncludes(page, `<script src="/static/vendor/jquery-3.1.1.min.js"></script>`);
  assertStringIncludes(page, `<script src="/static/tutorials/realpython_users.js"></script>`);
  assert(!/<script>/.test(page), "an inline script would be blocked by the CSP");
});

Deno.test("realpython: an anonymous visitor of the page is sent to log in first", async () => {
  await using app = await appWith([]);
  const response = await get(app, USER_LIST_PATH);
  assertEquals(response.status, 302);
  assertEquals(response.headers.get("location"), `/log_in/?next=${USER_LIST_PATH}`);
});

Deno.test("realpython: the tutorial's script and jQuery are served", async () => {
  await using app = await appWith([]);
  const script = await (await get(app, "/static/tutorials/realpython_users.js")).text();
  assertStringIncludes(script, "new WebSocket('ws://' + window.location.host + '/users/');");
  const jquery = await get(app, "/static/vendor/jquery-3.1.1.min.js");
  assertEquals(jquery.status, 200);
  assertStringIncludes(await jquery.text(), "/*! jQuery v3.1.1 | (c) jQuery Foundation");
});

// Online presence indicator: WS /ws/presence/

Deno.test("indicator: an anonymous visitor is refused at the handshake", async () => {
  await using app = await appWith([]);
  const comm = new Communicator(app, "/ws/presence/");
  assertObjectMatch(await comm.connect(), { accepted: false, status: 403 });
});

Deno.test("indicator: every member hears who came and who is online", async () => {
  await using app = await appWith(["ada", "bob"]);
  const ada = await open(app, "/ws/presence/", await logIn(app, "ada"));
  assertEquals(await ada.receiveJson(), { msg: "ada Connected", online: 1, users: ["ada"] });
  const bob = await open(app, "/ws/presence/", await logIn(app, "bob"));
  const both = { msg: "bob Connected", online: 2, users: ["ada", "bob"] };
  assertEquals(await ada.receiveJson(), both);
  assertEquals(await bob.receiveJson(), both);
  await bob.disconnect();
  assertEquals(await ada.receiveJson(), { msg: "bob Disconnected", online: 1, users: ["ada"] });
});

Deno.test("indicator: a user with two tabs is listed and counted once", async () => {
  await using app = await appWith(["ada", "bob"]);
  const ada = await open(app, "/ws/presence/", await logIn(app, "ada"));
  await ada.receiveJson();
  const bobSession = await logIn(app, "bob");
  const tab1 = await open(app, "/ws/presence/", bobSession);
  const both = { msg: "bob Connected", online: 2, users: ["ada", "bob"] };
  assertEquals(await ada.receiveJson(), both);
  assertEquals(await tab1.receiveJson(), both);
  const tab2 = await open(app, "/ws/presence/", bobSession);
  // The new tab is told the state at once; nobody else hears of it.
  assertEquals(await tab2.receiveJson(), both);
  assert(await ada.receiveNothing(200), "a second tab was counted as a change");
  await tab1.disconnect();
  assert(await ada.receiveNothing(200), "bob went offline with a tab still open");
  await tab2.disconnect();
  assertEquals(await ada.receiveJson(), { msg: "bob Disconnected", online: 1, users: ["ada"] });
});

Deno.test("indicator: users online on other pages of the site count too", async () => {
  await using app = await appWith(["ada", "bob"]);
  const bob = await open(app, "/users/", await logIn(app, "bob"));
  await bob.receiveJson(); // bob is online on RealPython's list
  const ada = await open(app, "/ws/presence/", await logIn(app, "ada"));
  assertEquals(await ada.receiveJson(), { msg: "ada Connected", online: 2, users: ["bob", "ada"] });
});

Deno.test("indicator: the page has the tutorial's ids and script", async () => {
  await using app = await appWith(["ada"]);
  const anonymous = await get(app, PRESENCE_INDICATOR_PATH);
  assertEquals(anonymous.status, 302);
  assertEquals(anonymous.headers.get("location"), `/log_in/?next=${PRESENCE_INDICATOR_PATH}`);
  const response = await get(app, PRESENCE_INDICATOR_PATH, await logIn(app, "ada"));
  assertEquals(response.status, 200);
  const page = await response.text();
  assertStringIncludes(page, `<span class="tag is-success" id="pre_cnt">0</span>`);
  assertStringIncludes(page, `<ul id="messages"></ul>`);
  assertStringIncludes(page, `<div id="online-users"></div>`);
  assertStringIncludes(page, `src="/static/tutorials/presence_indicator.js"`);
  const script = await (await get(app, "/static/tutorials/presence_indicator.js")).text();
  assertStringIncludes(
    script,
    "const ws = new WebSocket('ws://' + window.location.host + '/ws/presence/');",
  );
});

// AuthMiddlewareStack echo: WS /ws/myapp/<user_id>/

Deno.test("auth echo: an anonymous user is refused at the handshake", async () => {
  await using app = await appWith([]);
  const comm = new Communicator(app, "/ws/myapp/42/");
  assertObjectMatch(await comm.connect(), { accepted: false, status: 403 });
});

Deno.test("auth echo: a signed-in user is told what they said, as plain text", async () => {
  await using app = await appWith(["ada"]);
  const comm = await open(app, "/ws/myapp/42/", await logIn(app, "ada"));
  comm.send("hello");
  comm.send("café ☕");
  assertEquals(await comm.receive(), "You said: hello");
  assertEquals(await comm.receive(), "You said: café ☕");
  await comm.disconnect();
});

// Wu Peiqi's group chat: WS /ws/<group>/

async function relay(app: TestApp, group: string): Promise<Communicator> {
  const comm = new Communicator(app, `/ws/${group}/`);
  const { accepted, status } = await comm.connect();
  assert(accepted, `/ws/${group}/ was refused with ${status}`);
  return comm;
}

Deno.test("group chat: raw text reaches every socket of the group, the sender's too", async () => {
  await using app = await appWith([]);
  const [a, b, other] = [await relay(app, "123"), await relay(app, "123"), await relay(app, "456")];
  a.send("hello");
  b.send("你好");
  for (const comm of [a, b]) {
    assertEquals(await comm.receive(), "hello");
    assertEquals(await comm.receive(), "你好");
  }
  assert(await other.receiveNothing(), "another group heard it");
});

Deno.test("group chat: 关闭 makes the server close that socket normally", async () => {
  await using app = await appWith([]);
  const [a, b] = [await relay(app, "123"), await relay(app, "123")];
  a.send("关闭");
  assertEquals(await a.waitForClose(), 1000);
  assert(await b.receiveNothing(), "关闭 was relayed");
  b.send("still here");
  assertEquals(await b.receive(), "still here");
});

Deno.test("group chat: a relay event from outside without a text reaches nobody, and is said once", async () => {
  await using app = await appWith([]);
  const [a, b] = [await relay(app, "123"), await relay(app, "123")];
  using captured = new CapturedLog();
  log.setLevel("warn");
  try {
    for (const text of [undefined, { a: 1 }, null]) {
      await app.services.layer.groupSend(relayGroup("123"), { type: RELAY_MESSAGE, text });
    }
    await app.services.layer.groupSend(relayGroup("123"), { type: RELAY_MESSAGE, text: "fine" });
    assertEquals([await a.receive(), await b.receive()], ["fine", "fine"]);
    const said = captured.lines.filter((line) => line.includes('its "text" is not a string'));
    assertEquals(said.length, 3, said.join("\n"));
  } finally {
    log.setLevel("silent");
  }
});

Deno.test("group chat: only word characters make a group", async () => {
  await using app = await appWith([]);
  for (const path of ["/ws/a-b/", "/ws/caf%C3%A9/", "/ws/a/b/"]) {
    assertObjectMatch(await new Communicator(app, path).connect(), {
      accepted: false,
      status: 404,
    });
  }
  // `relay.<id>` must stay a Channels group name (under 100 characters): 93 at most.
  const long = new Communicator(app, `/ws/${"x".repeat(94)}/`);
  assertObjectMatch(await long.connect(), {
    accepted: false,
    status: 403,
    reason: "A group id is at most 93 characters long",
  });
  const longest = new Communicator(app, `/ws/${"x".repeat(93)}/`);
  assertEquals((await longest.connect()).status, 101);
  await longest.disconnect();
});

Deno.test("group chat: exact routes win over the group pattern", async () => {
  await using app = await appWith([]);
  const echo = await relay(app, "echo");
  echo.send("hi");
  assertEquals(await echo.receive(), "You said: hi");
  // /ws/presence/ is the indicator, which refuses anonymous users: not a group named presence.
  assertObjectMatch(await new Communicator(app, "/ws/presence/").connect(), {
    accepted: false,
    status: 403,
  });
});
