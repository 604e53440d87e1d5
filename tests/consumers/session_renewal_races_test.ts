/**
 * A session renewed (a log-in again as the same user, a password change on its page) at the
 * worst moment for one of its sockets: whatever finds the old id gone before the renewal's own
 * close reaches that socket (a handshake's second read, the password-change watch) tells it to
 * reconnect (4002), as the renewal does, and a tab closing meanwhile keeps its presence grace:
 * no one sees the user leave.
 */
import { assert, assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { heldInConnect, serveRouteWith } from "../_support/serve_consumer.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { isSessionGroup } from "../../auth/sessions.ts";
import type { LayerEvent } from "../../layers/layer.ts";

const PASSWORD = "quiet river stone";
const NEW_PASSWORD = "amber lantern field";

/** A client of `server` that has signed up and logged in as `username`. */
async function loggedIn(server: TestServer, username: string): Promise<WebClient> {
  const client = new WebClient(server.url);
  await client.signUp(username, PASSWORD).catch(() => {}); // a second session of one user
  await client.logIn(username, PASSWORD);
  return client;
}

/** A presence socket of `client`'s, open and counted. */
async function presenceOf(server: TestServer, client: WebClient): Promise<TestSocket> {
  const socket = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: { ...client.socketHeaders(), origin: server.url },
  });
  assertEquals((await socket.nextJson()).type, "presence.state");
  return socket;
}

/** Bob's presence socket, and a tab of ada's `client`, once bob has seen ada join. */
async function watchedTab(server: TestServer, client: WebClient) {
  const watcher = await presenceOf(server, await loggedIn(server, "bob"));
  const tab = await presenceOf(server, client);
  await watcher.nextMatching((f) =>
    f.type === "presence.diff" && (f.joins as string[]).includes("ada")
  );
  return { watcher, tab };
}

/**
 * Holds the next join of a session's group (a handshake binding its socket) until `release`;
 * `held` resolves once one is held.
 */
function holdNextSessionJoin(server: TestServer) {
  const layer = server.app.services.layer;
  const groupAdd = layer.groupAdd.bind(layer);
  const held = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  layer.groupAdd = async (group, channel) => {
    if (isSessionGroup(group)) {
      layer.groupAdd = groupAdd;
      held.resolve();
      await gate.promise;
    }
    return await groupAdd(group, channel);
  };
  return { held: held.promise, release: () => gate.resolve() };
}

/** Holds the renewal's close (4002 to the old session's group) until `until` settles. */
function holdRenewalClose(server: TestServer, until: Promise<unknown>): void {
  const layer = server.app.services.layer;
  const groupSend = layer.groupSend.bind(layer);
  layer.groupSend = async (group: string, event: LayerEvent) => {
    if (event.code === CloseCode.SESSION_RENEWED) await until.catch(() => {});
    return await groupSend(group, event);
  };
}

Deno.test("a socket still connecting as its session is renewed is refused, and its consumer told to reconnect", async () => {
  await using server = await startTestServer();
  const ada = await loggedIn(server, "ada");
  // Its connect waits while the renewal runs: its close goes before the socket is in the group.
  const { consumer, entered, release, disconnected } = heldInConnect();
  await using route = serveRouteWith(server.app.services, consumer);
  const status = handshakeStatus(route.wsUrl, { ...ada.socketHeaders(), origin: route.origin });
  await entered;
  await ada.logIn("ada", PASSWORD);
  release();
  assertEquals(await status, 403, "the old id signs in no one");
  assertEquals([disconnected, route.live.size], [[CloseCode.SESSION_RENEWED], 0]);
});

Deno.test("a presence socket still connecting as its session is renewed leaves no one seeing the user go", async () => {
  await using server = await startTestServer({ presenceGraceMs: 60_000 });
  const ada = await loggedIn(server, "ada");
  const { watcher, tab } = await watchedTab(server, ada);
  const reopening = holdNextSessionJoin(server);
  // Another tab of the same browser, past its session's read and its presence, not yet bound.
  const status = handshakeStatus(server.wsUrl("/ws/presence/state/"), {
    ...ada.socketHeaders(),
    origin: server.url,
  });
  await reopening.held;
  await ada.logIn("ada", PASSWORD);
  assertEquals(await tab.closedWithin(), { code: 4002, reason: "Session renewed" });
  reopening.release();
  assertEquals(await status, 403);
  // With a minute's grace, only a log-out would have taken ada offline by now.
  assert(await watcher.staysQuiet(), "bob saw ada leave");
  await watcher.close();
});

Deno.test("a password-change check between the renewal's end of the old id and its close tells the tab to reconnect", async () => {
  // The `memory` layer: the server watches the store's password-change stamp (every 2 s).
  await using server = await startTestServer({ presenceGraceMs: 60_000 });
  const ada = await loggedIn(server, "ada");
  await loggedIn(server, "ada"); // another browser: the change ends it, and moves the stamp
  const { watcher, tab } = await watchedTab(server, ada);
  // The renewal's own close waits for the tab to close: only the watch's check can close it.
  const closed = tab.closedWithin(3 * 2_000);
  holdRenewalClose(server, closed);
  const changed = await ada.submit("/account/password/", {
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  await changed.body?.cancel();
  assertEquals(changed.status, 302);
  assertEquals(await closed, { code: 4002, reason: "Session renewed" });
  assert(await watcher.staysQuiet(), "bob saw ada leave");
  await watcher.close();
});

Deno.test("a tab that closes as its session is renewed, before the renewal's close reached it, keeps its grace", async () => {
  await using server = await startTestServer({ presenceGraceMs: 60_000 });
  const ada = await loggedIn(server, "ada");
  const { watcher, tab } = await watchedTab(server, ada);
  // The tab is closed by its user just as the renewal ends its id.
  const sessions = server.app.services.sessions;
  const create = sessions.create.bind(sessions);
  const gone = Promise.withResolvers<void>();
  sessions.create = async (...args: Parameters<typeof create>) => {
    const made = await create(...args);
    await tab.close();
    gone.resolve();
    return made;
  };
  holdRenewalClose(server, gone.promise);
  await ada.logIn("ada", PASSWORD);
  assert(await watcher.staysQuiet(), "bob saw ada leave");
  await watcher.close();
});

Deno.test("a log-in form sent twice keeps the renewed tabs' grace: the second finds the old id gone", async () => {
  await using server = await startTestServer({ presenceGraceMs: 60_000 });
  const ada = await loggedIn(server, "ada");
  const { watcher, tab } = await watchedTab(server, ada);
  // A double click: two posts of one form, with the cookie and token the page had.
  const post = async () => {
    const response = await fetch(`${server.url}/log_in/`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: cookieHeader,
        origin: server.url,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        csrfmiddlewaretoken: token,
        username: "ada",
        password: PASSWORD,
      }),
    });
    await response.body?.cancel();
    assertEquals(response.status, 302);
  };
  const token = await ada.csrfToken("/log_in/");
  const cookieHeader = ada.socketHeaders().cookie;
  await post();
  assertEquals((await tab.closedWithin()).code, CloseCode.SESSION_RENEWED);
  await post();
  assert(await watcher.staysQuiet(), "bob saw ada leave");
  await watcher.close();
});
