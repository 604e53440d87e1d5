/**
 * A password change ends every other session of the user: its pages are logged out and its
 * open sockets close with 4001 and a reason that says why, while the session that changed it
 * keeps working and other users' sessions are untouched. Sessions made before the sessions
 * were indexed by user end too.
 */
import { assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { echoAnswers, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";

const PASSWORD = "quiet river stone";
const NEW_PASSWORD = "amber lantern field";
const CHANGED = { code: 4001, reason: "Logged out: the password changed" };

async function changePassword(client: WebClient): Promise<void> {
  const response = await client.submit("/account/password/", {
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  await response.body?.cancel();
  assertEquals(response.status, 302);
}

async function echoSocket(server: TestServer, client: WebClient): Promise<TestSocket> {
  return await TestSocket.open(server.wsUrl("/ws/echo/"), { headers: client.socketHeaders() });
}

/** The status of a login-required page for `client`: 200 signed in, 302 sent to log in. */
async function tokensPageStatus(client: WebClient): Promise<number> {
  const response = await client.get("/account/tokens/");
  await response.body?.cancel();
  return response.status;
}

Deno.test("a password change logs out the user's other sessions and closes their sockets", async () => {
  await using server = await startTestServer();
  const laptop = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const phone = await WebClient.signedIn(server.url, "ada", PASSWORD, { signUp: false });
  const bob = await WebClient.signedIn(server.url, "bob", PASSWORD);
  const phoneSocket = await echoSocket(server, phone);
  const bobSocket = await echoSocket(server, bob);
  await changePassword(laptop);
  assertEquals(await phoneSocket.closedWithin(), CHANGED);
  assertEquals(await tokensPageStatus(phone), 302, "the other session's pages are logged out");
  assertEquals(await tokensPageStatus(laptop), 200, "the session that changed it goes on");
  const laptopSocket = await echoSocket(server, laptop);
  assertEquals(await echoAnswers(laptopSocket), true, "and opens sockets with its new id");
  assertEquals(await tokensPageStatus(bob), 200, "another user stays signed in");
  assertEquals(await echoAnswers(bobSocket), true, "with their sockets open");
  await Promise.all([laptopSocket.close(), bobSocket.close()]);
});

Deno.test("sessions made before the index end too, read since or not", async () => {
  await using server = await startTestServer();
  const laptop = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const { store } = server.app.services;
  // As an earlier version stored them: no `indexed` flag, no entry under `user_sessions`.
  const legacy = async (): Promise<WebClient> => {
    const id = crypto.getRandomValues(new Uint8Array(32))
      .toBase64({ alphabet: "base64url", omitPadding: true });
    const hash = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(id)),
    ).toHex();
    const now = Date.now() - 60_000;
    await store.set(["sessions", hash], {
      username: "ada",
      createdAt: now,
      expiresAt: now + 3600_000,
    });
    const client = new WebClient(server.url);
    client.jar.set("sessionid", id);
    return client;
  };
  const unread = await legacy();
  const withSocket = await legacy();
  const socket = await echoSocket(server, withSocket);
  await changePassword(laptop);
  assertEquals(await socket.closedWithin(), CHANGED, "a legacy session's socket closes");
  assertEquals(await tokensPageStatus(withSocket), 302);
  assertEquals(await tokensPageStatus(unread), 302, "one never read since is refused too");
  assertEquals(await tokensPageStatus(laptop), 200);
});

Deno.test("a log-in that checked the old password while the change ran is logged out", async () => {
  await using server = await startTestServer();
  const laptop = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const { users } = server.app.services;
  // Someone who knows the old password logs in; their password check finishes, and the change
  // runs before their session is made.
  const verify = users.verifyCredentials.bind(users);
  const checked = Promise.withResolvers<void>();
  const changed = Promise.withResolvers<void>();
  let holding = true;
  users.verifyCredentials = async (username, password) => {
    const user = await verify(username, password);
    if (holding) {
      holding = false;
      checked.resolve();
      await changed.promise;
    }
    return user;
  };
  const intruder = new WebClient(server.url);
  const loggingIn = intruder.logIn("ada", PASSWORD);
  await checked.promise;
  await changePassword(laptop);
  changed.resolve();
  await loggingIn;
  assertEquals(await tokensPageStatus(intruder), 302, "the old password's session is refused");
  assertEquals(await tokensPageStatus(laptop), 200);
});

Deno.test("a change of one account's password leaves another that differs only by ß alone", async () => {
  await using server = await startTestServer();
  const { users, store } = server.app.services;
  await users.create("straße", PASSWORD);
  // "strasse", another account, as an earlier version (keys by lower case only) made it.
  const straße = (await store.get<Record<string, unknown>>(["users", "straße"]))!;
  await store.set(["users", "strasse"], { ...straße, username: "strasse" });
  const sharp = await WebClient.signedIn(server.url, "straße", PASSWORD, { signUp: false });
  const plain = await WebClient.signedIn(server.url, "strasse", PASSWORD, { signUp: false });
  const sharpSocket = await echoSocket(server, sharp);
  await changePassword(plain);
  assertEquals(await tokensPageStatus(sharp), 200, "the other account stays signed in");
  assertEquals(await echoAnswers(sharpSocket), true, "with its socket open");
  await sharpSocket.close();
});
