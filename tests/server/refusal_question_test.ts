/**
 * A plain GET of a WebSocket route tells a handshake's lasting refusal (403 with a
 * `Channels-Refused` header and the reason), which a browser's WebSocket cannot see: the
 * reconnecting client asks it before it gives up (`client/address_check.js`).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { ProtocolError } from "../../server/close_codes.ts";
import { KEPT_MS, MAX_KEPT, RecentRefusals } from "../../server/_recent_refusals.ts";
import { serveConsumer, serveRouteWith } from "../_support/serve_consumer.ts";
import { startTestServer } from "../_support/server.ts";
import { handshakeStatus } from "../_support/socket.ts";
import { CapturedLog } from "../_support/captured_log.ts";

// What a plain GET of `url` (ws or http) answers: status, the refusal header and the body.
async function ask(url: string, init: RequestInit = {}) {
  const response = await fetch(url.replace(/^ws/, "http"), init);
  return {
    status: response.status,
    refused: response.headers.get("channels-refused"),
    body: (await response.text()).trim(),
  };
}

// Refuses every poll but "open" in connect, with the consumer's own reason.
const polls: Consumer = (conn) => ({
  connect() {
    const poll = conn.scope.query.get("poll");
    if (poll !== "open") throw new ProtocolError(`No poll named ${JSON.stringify(poll)}`);
  },
});

Deno.test("a GET after the consumer refused a handshake tells its reason; another address gets the 426", async () => {
  await using server = await serveConsumer(polls, "/ws/polls/");
  const refusedUrl = `${server.url}?poll=closed`;
  // Before any refusal, nothing is known: the plain 426 that says to upgrade.
  assertEquals((await ask(refusedUrl)).status, 426);
  assertEquals(await handshakeStatus(refusedUrl), 403);
  assertEquals(await ask(refusedUrl), {
    status: 403,
    refused: "consumer",
    body: 'No poll named "closed"',
  });
  // Only the address the consumer refused: another query is another handshake.
  const other = await ask(`${server.url}?poll=other`);
  assertEquals([other.status, other.refused], [426, null]);
  // An address the consumer accepts is not refused by its GET either.
  const accepted = new WebSocket(`${server.url}?poll=open`);
  await new Promise((resolve) => accepted.onopen = resolve);
  assertEquals((await ask(`${server.url}?poll=open`)).status, 426);
  const closed = new Promise((resolve) => accepted.onclose = resolve);
  accepted.close();
  await closed;
});

Deno.test("a GET of a login-required route tells a signed-out client so; one with a bad token is told why", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const presence = server.httpUrl("/ws/presence/state/");
  assertEquals(await ask(presence), {
    status: 403,
    refused: "login_required",
    body: "Login required: log in to open this connection",
  });
  // The access line says why, as for any refusal, and the query's token is not in it.
  const token = await ask(server.httpUrl("/ws/chat/lobby/?token=not-a-real-token"));
  assertEquals([token.status, token.refused], [403, "token"]);
  assert(token.body.length > 0);
  const line = captured.lines.find((l) => l.includes("GET /ws/chat/lobby/") && l.includes(" 403 "));
  if (line === undefined) throw new Error(`no access line: ${captured.lines.join("\n")}`);
  assert(!line.includes("not-a-real-token"), line);
  // Without a token the chat is open to anyone: its GET is the plain 426.
  assertEquals((await ask(server.httpUrl("/ws/chat/lobby/"))).status, 426);
  // The questions told are no handshakes refused; the 426 counts as a malformed one, as before.
  const { metrics } = server.app.services;
  assertEquals(metrics.route("/ws/presence/state/").refused.bad_handshake, 0);
  assertEquals(metrics.route("/ws/chat/:room/").refused.bad_handshake, 1);
});

// An app's own log-in cookie, read in `connect`: the framework knows no user behind it.
const suspended: Consumer = (conn) => ({
  connect() {
    const user = /app_user=(\w+)/.exec(conn.scope.headers.get("cookie") ?? "")?.[1];
    if (user === "mallory") throw new ProtocolError("Account mallory@example.com is suspended");
    if (user === "full") conn.close(1013, "Room full, try again in a minute");
  },
});

Deno.test("a consumer's refusal is told only to the client it refused, and only until it is let in", async () => {
  await using server = await serveConsumer(suspended, "/ws/app/");
  const as = (user: string) => ({ headers: { cookie: `app_user=${user}` } });
  assertEquals(await handshakeStatus(server.url, as("mallory").headers), 403);
  assertEquals((await ask(server.url, as("mallory"))).refused, "consumer");
  // Bob, from the same address (an office behind one NAT), is let in, and never told hers.
  assertEquals((await ask(server.url, as("bob"))).status, 426);
  const bob = new WebSocket(server.url, { headers: as("bob").headers });
  await new Promise((resolve) => bob.onopen = resolve);
  const bobClosed = new Promise((resolve) => bob.onclose = resolve);
  bob.close();
  await bobClosed;
  assertEquals((await ask(server.url, as("bob"))).status, 426);
  // However long the cookies (analytics ones, say): still told to the client it refused.
  const long = { headers: { cookie: `app_user=mallory; _ga=${"x".repeat(3000)}` } };
  assertEquals(await handshakeStatus(server.url, long.headers), 403);
  assertEquals((await ask(server.url, long)).refused, "consumer");
  // A refusal that says "try again later" (1013) is not told as one that stands.
  assertEquals(await handshakeStatus(server.url, as("full").headers), 403);
  assertEquals((await ask(server.url, as("full"))).status, 426);
});

Deno.test("a client once refused, then let in, is no longer told the old refusal", async () => {
  let refusing = true;
  const gate: Consumer = () => ({
    connect() {
      if (refusing) throw new ProtocolError("Closed for maintenance");
    },
  });
  await using server = await serveConsumer(gate, "/ws/gate/");
  assertEquals(await handshakeStatus(server.url), 403);
  assertEquals((await ask(server.url)).refused, "consumer");
  refusing = false;
  const ws = new WebSocket(server.url);
  await new Promise((resolve) => ws.onopen = resolve);
  assertEquals((await ask(server.url)).status, 426);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  ws.close();
  await closed;
});

Deno.test("a token or a session that could not be read is not told as refused for good", async () => {
  await using server = await startTestServer();
  // The server's services, but `identify` answers an anonymous visitor with `why` the store
  // could not say more.
  const anonymousBecause = (
    why: { refused: string; refusedForNow: true } | {
      sessionUnread: true;
    },
  ) => ({
    ...server.app.services,
    identify: () =>
      Promise.resolve({
        user: Object.freeze({ username: "", isAuthenticated: false }),
        sessionId: null,
        ...why,
      }),
  });
  const unchecked = anonymousBecause({
    refused: "Token could not be checked: try again later",
    refusedForNow: true,
  });
  await using route = serveRouteWith(unchecked, polls);
  assertEquals((await ask(`${route.wsUrl}?token=x`)).status, 426);
  // Nor a session that could not be read, on a login-required route.
  const unread = anonymousBecause({ sessionUnread: true });
  await using guarded = serveRouteWith(unread, polls, { loginRequired: true });
  assertEquals((await ask(guarded.wsUrl)).status, 426);
});

Deno.test("a same-origin page's GET, which carries no Origin, is checked by its Referer", async () => {
  await using server = await startTestServer();
  const echo = server.httpUrl("/ws/echo/");
  // A page on a host this server does not serve (as behind a proxy that dropped the port from
  // Host: the page's origin is not the host asked for), whose WebSocket is refused its Origin.
  const elsewhere = "https://chat.example:8443";
  assertEquals(await handshakeStatus(echo, { origin: elsewhere }), 403);
  const refused = await ask(echo, { headers: { referer: `${elsewhere}/chat/lobby/` } });
  assertEquals([refused.status, refused.refused], [403, "origin"]);
  assertMatch(refused.body, /Cross-site WebSocket refused/);
  assertEquals((await ask(echo, { headers: { referer: server.httpUrl("/chat/") } })).status, 426);
});

Deno.test("recent refusals are kept 30 s, per client, user and address, and at most MAX_KEPT", () => {
  let now = 0;
  const recent = new RecentRefusals(() => now);
  const ada = { client: "10.0.0.1", who: "session-a", address: "/ws/x/?poll=1" };
  recent.note(ada, "No such poll");
  assertEquals(recent.find(ada), "No such poll");
  assertEquals(recent.find({ ...ada, client: "10.0.0.2" }), undefined);
  assertEquals(recent.find({ ...ada, who: "session-b" }), undefined);
  assertEquals(recent.find({ ...ada, address: "/ws/x/?poll=2" }), undefined);
  recent.forget(ada);
  assertEquals(recent.find(ada), undefined);
  recent.note(ada, "No such poll");
  now = KEPT_MS + 1;
  assertEquals(recent.find(ada), undefined);
  for (let i = 0; i <= MAX_KEPT; i++) recent.note({ ...ada, address: `/ws/x/?poll=${i}` }, "No");
  assertEquals(recent.size, MAX_KEPT);
  // The oldest went first; a reason is kept to 200 characters.
  assertEquals(recent.find({ ...ada, address: "/ws/x/?poll=0" }), undefined);
  assertEquals(recent.find({ ...ada, address: `/ws/x/?poll=${MAX_KEPT}` }), "No");
  recent.note(ada, "x".repeat(1000));
  assertMatch(recent.find(ada)!, /^x{200}$/);
});
