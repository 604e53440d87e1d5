/**
 * Access tokens over real sockets: a consumer sees the token's user in `scope.user`, whether
 * the token comes as `Authorization: Bearer` or `?token=`; a revoked or bad token is refused
 * with 403 and a REJECT line saying why; the token never reaches a log line; pages take
 * cookies only; and the tokens page makes and revokes tokens behind the CSRF check.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { MAX_TOKENS_PER_USER, TooManyTokensError } from "../../mod.ts";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const PASSWORD = "quiet river stone";

async function signedUp(server: TestServer, username: string): Promise<WebClient> {
  const client = new WebClient(server.url);
  await client.signUp(username, PASSWORD);
  await client.logIn(username, PASSWORD);
  return client;
}

/** The author the room shows for a message sent on `socket`, as another member sees it. */
async function authorSeenBy(witness: TestSocket, socket: TestSocket, text: string) {
  socket.sendJson({ message: text });
  return (await witness.nextMatching((frame) => frame.message === text)).author;
}

Deno.test("a consumer sees the token's user, from a Bearer header or from ?token=", async () => {
  await using server = await startTestServer();
  await signedUp(server, "ada");
  const { token } = await server.app.services.tokens.create("ada");
  const room = server.wsUrl("/ws/chat/lobby/");
  const witness = await TestSocket.open(room);
  const bearer = await TestSocket.open(room, { headers: { authorization: `Bearer ${token}` } });
  assertEquals(await authorSeenBy(witness, bearer, "from the header"), "ada");
  const query = await TestSocket.open(`${room}?token=${encodeURIComponent(token)}`);
  assertEquals(await authorSeenBy(witness, query, "from the query"), "ada");
  await Promise.all([witness.close(), bearer.close(), query.close()]);
});

Deno.test("a revoked token is refused at the next handshake, with the reason logged", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  await signedUp(server, "ada");
  const { token } = await server.app.services.tokens.create("ada");
  const url = server.wsUrl("/ws/chat/lobby/");
  const before = await TestSocket.open(url, { headers: { authorization: `Bearer ${token}` } });
  await before.close();
  assertEquals(await server.app.services.tokens.revokeAll("ada"), 1);
  assertEquals(await handshakeStatus(url, { authorization: `Bearer ${token}` }), 403);
  assertEquals(await handshakeStatus(`${url}?token=${token}`), 403);
  await captured.waitFor(
    /^WebSocket REJECT \/ws\/chat\/lobby\/ \[127\.0\.0\.1:\d+\] \(Token revoked\)$/,
  );
  assertEquals(await handshakeStatus(url, { authorization: "Bearer not-a-token" }), 403);
  await captured.waitFor(/REJECT .*\(Malformed token\)$/);
  assert(!captured.lines.some((line) => line.includes(token)), "the token is never logged");
});

Deno.test("the access log shows token=[redacted], never the token", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  await signedUp(server, "ada");
  const { token } = await server.app.services.tokens.create("ada");
  await (await fetch(server.httpUrl(`/chat/?token=${token}&room=x`))).body?.cancel();
  await captured.waitFor(/^HTTP GET \/chat\/\?token=\[redacted\]&room=x 200 /);
  const socket = await TestSocket.open(server.wsUrl(`/ws/chat/lobby/?token=${token}`));
  await captured.waitFor(/^WebSocket CONNECT \/ws\/chat\/lobby\/ /);
  await socket.close();
  await captured.waitFor(/^WebSocket DISCONNECT \/ws\/chat\/lobby\/ /);
  assertEquals(captured.lines.filter((line) => line.includes(token)), []);
});

Deno.test("pages take cookies only: a token does not sign a page request in", async () => {
  await using server = await startTestServer();
  await signedUp(server, "ada");
  const { token } = await server.app.services.tokens.create("ada");
  const page = await fetch(server.httpUrl("/account/tokens/"), {
    headers: { authorization: `Bearer ${token}` },
    redirect: "manual",
  });
  await page.body?.cancel();
  assertEquals(page.status, 302);
  assertEquals(page.headers.get("location"), "/log_in/?next=%2Faccount%2Ftokens%2F");
});

Deno.test("the tokens page makes a token shown once, and revokes them all", async () => {
  await using server = await startTestServer();
  const ada = await signedUp(server, "ada");
  const created = await ada.submit("/account/tokens/", {}, { action: "/account/tokens/new/" });
  assertEquals(created.status, 201);
  assertEquals(created.headers.get("cache-control"), "no-store");
  const body = await created.text();
  const token = body.match(/id="new-token" value="([^"]+)"/)?.[1];
  if (token === undefined) throw new Error(`No new token on the page:\n${body}`);
  assertStringIncludes(body, "You have 1 live token:");
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), {
    headers: { authorization: `Bearer ${token}` },
  });
  socket.sendJson({ message: "made on the page" });
  assertEquals((await socket.nextMatching((f) => f.message === "made on the page")).author, "ada");
  await socket.close();
  const listed = await (await ada.get("/account/tokens/")).text();
  assert(!listed.includes(token), "the page shows a token only when it is made");
  const revoked = await ada.submit("/account/tokens/", {}, { action: "/account/tokens/revoke/" });
  assertMatch(await revoked.text(), /Revoked 1 token\./);
  assertEquals(
    await handshakeStatus(server.wsUrl("/ws/chat/lobby/"), { authorization: `Bearer ${token}` }),
    403,
  );
});

Deno.test("a user holding the most live tokens allowed is refused another, on the page and in the API", async () => {
  await using server = await startTestServer();
  const ada = await signedUp(server, "ada");
  const tokens = server.app.services.tokens;
  for (let n = 0; n < MAX_TOKENS_PER_USER; n++) await tokens.create("ada");
  const refused = await ada.submit("/account/tokens/", {}, { action: "/account/tokens/new/" });
  assertEquals(refused.status, 409);
  const body = await refused.text();
  assertStringIncludes(body, `At most ${MAX_TOKENS_PER_USER} live access tokens per user`);
  assert(!body.includes('id="new-token"'), "no token was shown");
  await assertRejects(() => tokens.create("ada"), TooManyTokensError);
  assertEquals((await tokens.list("ada")).length, MAX_TOKENS_PER_USER);
  await tokens.create("bob"); // another user's count is their own
  await tokens.revokeAll("ada");
  const made = await ada.submit("/account/tokens/", {}, { action: "/account/tokens/new/" });
  await made.body?.cancel();
  assertEquals(made.status, 201);
});

Deno.test("the tokens forms refuse a POST without the CSRF token or without a login", async () => {
  await using server = await startTestServer();
  const ada = await signedUp(server, "ada");
  const forged = await ada.post("/account/tokens/new/", {});
  await forged.body?.cancel();
  assertEquals(forged.status, 403);
  assertEquals(await server.app.services.tokens.list("ada"), []);
  const anonymous = new WebClient(server.url);
  const refused = await anonymous.submit("/log_in/", {}, { action: "/account/tokens/new/" });
  await refused.body?.cancel();
  assertEquals(refused.status, 403);
});

Deno.test("a signed-in browser's socket is its session's user's: a token beside it is not looked at", async () => {
  await using server = await startTestServer();
  const ada = await signedUp(server, "ada");
  await signedUp(server, "grace");
  const { token } = await server.app.services.tokens.create("grace");
  const room = server.wsUrl("/ws/chat/lobby/");
  const witness = await TestSocket.open(room);
  // Another user's valid token, then one that is no token: the session wins both times.
  for (const given of [token, "not-a-token"]) {
    const socket = await TestSocket.open(`${room}?token=${encodeURIComponent(given)}`, {
      headers: ada.socketHeaders(),
    });
    assertEquals(await authorSeenBy(witness, socket, `with ${given.slice(0, 8)}`), "ada");
    await socket.close();
  }
  await witness.close();
});
