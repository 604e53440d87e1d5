/**
 * A plain GET of a WebSocket route tells a handshake's lasting refusal (403 with a
 * `Channels-Refused` header and the reason), which a browser's WebSocket cannot see: the
 * reconnecting client asks it before it gives up (`client/address_check.js`).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { ProtocolError } from "../../server/close_codes.ts";
import { KEPT_MS, MAX_KEPT, RecentRefusals } from "../../server/_recent_refusals.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
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
});

Deno.test("recent refusals are kept a minute, per client, user and address, and at most MAX_KEPT", () => {
  let now = 0;
  const recent = new RecentRefusals(() => now);
  const ada = { client: "10.0.0.1", who: "session-a", address: "/ws/x/?poll=1" };
  recent.note(ada, "No such poll");
  assertEquals(recent.find(ada), "No such poll");
  assertEquals(recent.find({ ...ada, client: "10.0.0.2" }), undefined);
  assertEquals(recent.find({ ...ada, who: "session-b" }), undefined);
  assertEquals(recent.find({ ...ada, address: "/ws/x/?poll=2" }), undefined);
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
