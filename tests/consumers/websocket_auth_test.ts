/**
 * WebSocket auth over real sockets: the session cookie fills `scope.user`, login-required
 * routes refuse anonymous upgrades, Origin is checked, and logging out closes the session's
 * login-required sockets.
 */
import { assert, assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket, WAIT_MS } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import type { Consumer } from "../../server/consumer.ts";
import { heldInConnect, serveRouteWith } from "../_support/serve_consumer.ts";

const PASSWORD = "quiet river stone";

/** `socket`'s close code and reason, or a failure if it stays open. */
function closedWithin(socket: TestSocket): Promise<{ code: number; reason: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Socket still open after ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([socket.closed, timeout]).finally(() => clearTimeout(timer));
}

/** A client of `server` that has signed up and logged in as `username`. */
async function loggedIn(server: TestServer, username: string): Promise<WebClient> {
  const client = new WebClient(server.url);
  await client.signUp(username, PASSWORD).catch(() => {}); // a second session of one user
  await client.logIn(username, PASSWORD);
  return client;
}

/**
 * A login-required route served on its own port with `server`'s services (the app's own
 * login-required routes belong to other features): it greets the user by name and echoes.
 */
function privateRoute(server: TestServer) {
  const connects: string[] = [];
  const consumer: Consumer = (conn) => ({
    connect() {
      connects.push(conn.scope.user.username ?? "");
      conn.sendJson({ hello: conn.scope.user.username });
    },
    receive: (text) => conn.send(text),
  });
  return { connects, ...serveRouteWith(server.app.services, consumer, { loginRequired: true }) };
}

Deno.test("an anonymous upgrade to a login-required route is refused before any socket opens", async () => {
  await using server = await startTestServer();
  await using route = privateRoute(server);
  assertEquals(await handshakeStatus(route.wsUrl, { origin: route.origin }), 403);
  const stale = { origin: route.origin, cookie: "sessionid=" + "A".repeat(43) };
  assertEquals(await handshakeStatus(route.wsUrl, stale), 403, "an unknown session is anonymous");
  assertEquals(route.connects, [], "the consumer never ran");
  assertEquals(route.live.size, 0);
});

Deno.test("a logged-in user opens a login-required socket as themself", async () => {
  await using server = await startTestServer();
  await using route = privateRoute(server);
  const ada = await loggedIn(server, "ada");
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { ...ada.socketHeaders(), origin: route.origin },
  });
  assertEquals(await socket.nextJson(), { hello: "ada" });
  await socket.close();
});

Deno.test("logging out closes that session's login-required sockets with 4001, no others", async () => {
  await using server = await startTestServer();
  await using route = privateRoute(server);
  const laptop = await loggedIn(server, "ada");
  const phone = await loggedIn(server, "ada");
  const open = async (client: WebClient) => {
    const socket = await TestSocket.open(route.wsUrl, {
      headers: { ...client.socketHeaders(), origin: route.origin },
    });
    await socket.nextJson();
    return socket;
  };
  const [tab1, tab2, other] = [await open(laptop), await open(laptop), await open(phone)];
  await laptop.logOut();
  assertEquals(await closedWithin(tab1), { code: 4001, reason: "Logged out" });
  assertEquals(await closedWithin(tab2), { code: 4001, reason: "Logged out" });
  other.send("still here?");
  assertEquals(await other.next(), "still here?", "the phone's session is untouched");
  await other.close();
});

Deno.test("a socket still connecting when its session logs out is refused, not left open as the user", async () => {
  await using server = await startTestServer();
  const ada = await loggedIn(server, "ada");
  // Its connect waits while the log-out runs, before the socket is in its session's group.
  const { consumer, entered, release, disconnected } = heldInConnect();
  await using route = serveRouteWith(server.app.services, consumer);
  const status = handshakeStatus(route.wsUrl, { ...ada.socketHeaders(), origin: route.origin });
  await entered;
  await ada.logOut();
  release();
  assertEquals(await status, 403);
  assertEquals([disconnected, route.live.size], [[4001], 0]);
});

Deno.test("a socket that opens while its session is replaced by a new log-in of its user is told to reconnect", async () => {
  await using server = await startTestServer();
  await using route = privateRoute(server);
  const ada = await loggedIn(server, "ada");
  const oldSession = { ...ada.socketHeaders(), origin: route.origin };
  const sessions = server.app.services.sessions;
  const create = sessions.create.bind(sessions);
  let opened: TestSocket | undefined;
  // The old session's tab reconnects while the log-in is under way, before its id is gone.
  sessions.create = async (...args: Parameters<typeof create>) => {
    opened = await TestSocket.open(route.wsUrl, { headers: oldSession });
    assertEquals(await opened.nextJson(), { hello: "ada" });
    return await create(...args);
  };
  await ada.logIn("ada", PASSWORD);
  assertEquals(await closedWithin(opened!), { code: 4002, reason: "Session renewed" });
});

Deno.test("a log-in that fails once the old session is gone still closes that session's sockets", async () => {
  await using server = await startTestServer();
  await using route = privateRoute(server);
  const ada = await loggedIn(server, "ada");
  const tab = await TestSocket.open(route.wsUrl, {
    headers: { ...ada.socketHeaders(), origin: route.origin },
  });
  assertEquals(await tab.nextJson(), { hello: "ada" });
  const sessions = server.app.services.sessions;
  // The old session deleted, the new one not stored (Redis at maxmemory takes DEL, not SET).
  sessions.create = async (_username, options = {}) => {
    if (options.replacing) await sessions.delete(options.replacing);
    throw new Error("OOM command not allowed when used memory > 'maxmemory'");
  };
  await ada.logIn("ada", PASSWORD).catch(() => {}); // refused: what matters is the old tab
  assertEquals(await closedWithin(tab), { code: 4001, reason: "Logged out" });
});

Deno.test("logging out closes the session's chat sockets too: none goes on posting as the user", async () => {
  await using server = await startTestServer();
  const ada = await loggedIn(server, "ada");
  const headers = { ...ada.socketHeaders(), origin: server.url };
  const adaInChat = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), { headers });
  const bob = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), {
    headers: { origin: server.url },
  });
  adaInChat.sendJson({ message: "hello" });
  assertEquals((await bob.nextMatching((frame) => frame.message === "hello")).author, "ada");
  await ada.logOut();
  assertEquals(await closedWithin(adaInChat), { code: 4001, reason: "Logged out" });
  bob.sendJson({ message: "still here" });
  assertEquals(
    (await bob.nextMatching((frame) => frame.message === "still here")).author,
    "Anonymous",
  );
  await bob.close();
});

Deno.test("a page from another site cannot open a socket with the user's cookie", async () => {
  await using server = await startTestServer();
  const ada = await loggedIn(server, "ada");
  const headers = { ...ada.socketHeaders(), origin: "https://evil.example" };
  assertEquals(await handshakeStatus(server.wsUrl("/ws/chat/lobby/"), headers), 403);
  await using route = privateRoute(server);
  assertEquals(await handshakeStatus(route.wsUrl, headers), 403);
  assertEquals(route.connects, []);
});

Deno.test("a page from the server's own host opens a socket", async () => {
  await using server = await startTestServer();
  const ada = await loggedIn(server, "ada");
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), {
    headers: ada.socketHeaders(),
  });
  await socket.close();
});

Deno.test("with ALLOWED_HOSTS set, only those hosts may open sockets", async () => {
  await using server = await startTestServer({ allowedHosts: ["chat.example", ".example.org"] });
  const url = server.wsUrl("/ws/echo/");
  for (const origin of ["https://chat.example", "https://www.example.org"]) {
    const socket = await TestSocket.open(url, { headers: { origin } });
    await socket.close();
  }
  assertEquals(await handshakeStatus(url, { origin: server.url }), 403, "not in the list");
  assertEquals(await handshakeStatus(url, { origin: "https://chat.example.com" }), 403);
});

Deno.test("a logged-in user's chat message carries their name; an anonymous one's does not", async () => {
  await using server = await startTestServer();
  const ada = await loggedIn(server, "ada");
  const url = server.wsUrl("/ws/chat/lobby/");
  const named = await TestSocket.open(url, { headers: ada.socketHeaders() });
  const anonymous = await TestSocket.open(url, { headers: { origin: server.url } });
  named.sendJson({ message: "from ada" });
  assertEquals((await anonymous.nextMatching((m) => m.message === "from ada")).author, "ada");
  anonymous.sendJson({ message: "from nobody" });
  assertEquals(
    (await named.nextMatching((m) => m.message === "from nobody")).author,
    "Anonymous",
  );
  await named.close();
  await anonymous.close();
});

Deno.test("a malformed Cookie header makes an anonymous socket, not a server error", async () => {
  await using server = await startTestServer();
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), {
    headers: { origin: server.url, cookie: "=broken; sessionid=nothing" },
  });
  socket.sendJson({ message: "hello" });
  assertEquals((await socket.nextMatching((m) => m.message === "hello")).author, "Anonymous");
  await socket.close();
});

Deno.test("logging out ends the session's presence at once, with no socket of it open", async () => {
  // A long grace period: only the log-out can take the closed tab's user offline in time.
  await using server = await startTestServer({ presenceGraceMs: 60_000 });
  const bob = await loggedIn(server, "bob");
  const ada = await loggedIn(server, "ada");
  const headers = (client: WebClient) => ({ ...client.socketHeaders(), origin: server.url });
  const watcher = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: headers(ada),
  });
  const tab = await TestSocket.open(server.wsUrl("/ws/presence/state/"), { headers: headers(bob) });
  await watcher.nextMatching((f) =>
    f.type === "presence.diff" && (f.joins as string[]).includes("bob")
  );
  await tab.close(); // bob's tab closed: online for the grace period
  await bob.logOut();
  await watcher.nextMatching((f) =>
    f.type === "presence.diff" && (f.leaves as string[]).includes("bob")
  );
  await watcher.close();
});

Deno.test("a socket closes with 4001 when the session it was opened with expires", async () => {
  await using server = await startTestServer({ sessionMaxAgeSeconds: 1 });
  await using route = privateRoute(server);
  const ada = await loggedIn(server, "ada");
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { ...ada.socketHeaders(), origin: route.origin },
  });
  assertEquals(await socket.nextJson(), { hello: "ada" });
  assertEquals(await closedWithin(socket), { code: 4001, reason: "Session expired: log in again" });
});

Deno.test("a socket closes with 4001 when the token it was opened with expires", async () => {
  await using server = await startTestServer({ tokenMaxAgeSeconds: 1 });
  await using route = privateRoute(server);
  await server.app.services.users.create("ada", PASSWORD);
  const { token } = await server.app.services.tokens.create("ada");
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { authorization: `Bearer ${token}` },
  });
  assertEquals(await socket.nextJson(), { hello: "ada" });
  assertEquals(await closedWithin(socket), { code: 4001, reason: "Token expired: log in again" });
});

Deno.test("a password change on its page renews the tab's session: its sockets reconnect, and presence shows no leave", async () => {
  await using server = await startTestServer({ presenceGraceMs: 60_000 });
  const bob = await loggedIn(server, "bob");
  const ada = await loggedIn(server, "ada");
  const elsewhere = await loggedIn(server, "ada"); // another browser of ada's
  const headers = (client: WebClient) => ({ ...client.socketHeaders(), origin: server.url });
  const watcher = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: headers(bob),
  });
  const tab = await TestSocket.open(server.wsUrl("/ws/presence/state/"), { headers: headers(ada) });
  const other = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: headers(elsewhere),
  });
  await watcher.nextMatching((f) =>
    f.type === "presence.diff" && (f.joins as string[]).includes("ada")
  );
  const changed = await ada.submit("/account/password/", {
    old_password: PASSWORD,
    new_password1: "amber lantern field",
    new_password2: "amber lantern field",
  });
  await changed.body?.cancel();
  assertEquals(changed.status, 302);
  // This browser is still ada's, under a new id: reconnect. The other browser is logged out.
  assertEquals(await closedWithin(tab), { code: 4002, reason: "Session renewed" });
  assertEquals((await closedWithin(other)).code, 4001);
  // With a minute's grace, only a log-out would have taken ada offline by now.
  assert(await watcher.staysQuiet(), "bob saw ada leave");
  const back = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: headers(ada),
  });
  assertEquals((await back.nextJson()).type, "presence.state");
  assert(await watcher.staysQuiet(), "bob saw ada come back");
  await back.close();
  await watcher.close();
});

Deno.test("a log-in as another user in the same browser logs the sockets of the first out", async () => {
  await using server = await startTestServer();
  const browser = await loggedIn(server, "ada");
  await new WebClient(server.url).signUp("bob", PASSWORD);
  const tab = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: { ...browser.socketHeaders(), origin: server.url },
  });
  await browser.logIn("ada", PASSWORD);
  assertEquals(await closedWithin(tab), { code: 4002, reason: "Session renewed" });
  const again = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: { ...browser.socketHeaders(), origin: server.url },
  });
  await browser.logIn("bob", PASSWORD);
  assertEquals(await closedWithin(again), { code: 4001, reason: "Logged out" });
});
