import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import {
  PRESENCE_DIFF,
  PRESENCE_GROUP,
  type PresenceDiff,
} from "../../layers/presence/contract.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { type Config, loadConfig } from "../../server/config.ts";
import { Inbox } from "../layers/_inbox.ts";

const PASSWORD = "correct horse 9";
const FAST_HASHING = { passwordIterations: 1, allowWeakPasswordHashing: true };

function start(overrides: Partial<Config> = {}): Promise<TestServer> {
  return startTestServer({ ...FAST_HASHING, ...overrides });
}

/** Signs `username` up and logs them in; the client then holds their session. */
async function member(server: TestServer, username: string): Promise<WebClient> {
  const client = new WebClient(server.url);
  await client.signUp(username, PASSWORD);
  await client.logIn(username, PASSWORD);
  return client;
}

async function presenceSocket(server: TestServer, client: WebClient): Promise<TestSocket> {
  const socket = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
    headers: client.socketHeaders(),
  });
  assertEquals((await socket.nextJson()).type, "presence.state");
  return socket;
}

const diffWith = (key: "joins" | "leaves", user: string) => (frame: Record<string, unknown>) =>
  frame.type === PRESENCE_DIFF && (frame[key] as string[]).includes(user);

Deno.test("the user list sends an anonymous visitor to log in first", async () => {
  await using server = await start();
  const response = await new WebClient(server.url).get("/");
  await response.body?.cancel();
  assertEquals(response.status, 302);
  assertEquals(response.headers.get("location"), "/log_in/?next=/");
});

Deno.test("the user list shows every user Online or Offline, and the online count", async () => {
  await using server = await start();
  const ada = await member(server, "ada");
  await new WebClient(server.url).signUp("bob", PASSWORD);
  const ws = await presenceSocket(server, ada);
  await ws.nextMatching(diffWith("joins", "ada"));
  const response = await ada.get("/");
  const page = await response.text();
  assertEquals(response.status, 200);
  assertMatch(page, /<li [^>]*data-username="ada"[^>]*>.*Online.*<\/li>/);
  assertMatch(page, /<li [^>]*data-username="bob"[^>]*>.*Offline.*<\/li>/);
  assertMatch(page, /id="online-count">1</);
  assertMatch(page, /<bdi>ada<\/bdi> connected/, "the feed shows recent events");
  assertMatch(page, />Log out</);
  await ws.close();
});

Deno.test("logging in shows Online to others, and logging out Offline at once", async () => {
  await using server = await start({ presenceGraceMs: 60_000 });
  const ada = await member(server, "ada");
  const adaSocket = await presenceSocket(server, ada);
  const bob = await member(server, "bob");
  const bobSocket = await presenceSocket(server, bob);
  await adaSocket.nextMatching(diffWith("joins", "bob"));
  await bob.logOut();
  assertEquals((await bobSocket.closed).code, CloseCode.LOGGED_OUT);
  // Well within the 60 s grace period: a log-out has none.
  await adaSocket.nextMatching(diffWith("leaves", "bob"));
  await adaSocket.close();
});

Deno.test("the last tab closing turns its user Offline after the grace period", async () => {
  await using server = await start({ presenceGraceMs: 200 });
  const ada = await presenceSocket(server, await member(server, "ada"));
  const bob = await member(server, "bob");
  const [tab1, tab2] = [await presenceSocket(server, bob), await presenceSocket(server, bob)];
  await ada.nextMatching(diffWith("joins", "bob"));
  await tab1.close();
  await tab2.close();
  await ada.nextMatching(diffWith("leaves", "bob"));
  await ada.close();
});

Deno.test("a sign-up appears in every open list", async () => {
  await using server = await start();
  const ada = await presenceSocket(server, await member(server, "ada"));
  await new WebClient(server.url).signUp("newcomer", PASSWORD);
  const added = await ada.nextMatching((frame) => frame.type === "presence.user_added");
  assertEquals(added.username, "newcomer");
  await ada.close();
});

Deno.test("the presence socket refuses a page from another site", async () => {
  await using server = await start();
  const ada = await member(server, "ada");
  const headers = { ...ada.socketHeaders(), origin: "https://evil.example" };
  assertEquals(await handshakeStatus(server.wsUrl("/ws/presence/state/"), headers), 403);
});

Deno.test("a server shutting down announces its users offline without a grace period", async () => {
  const server = await start({ presenceGraceMs: 60_000 });
  const layer = server.app.services.layer;
  const inbox = new Inbox(layer, 5000);
  await layer.groupAdd(PRESENCE_GROUP, inbox.channel);
  const socket = await presenceSocket(server, await member(server, "ada"));
  await inbox.until(() => diffs(inbox).some((diff) => diff.joins.includes("ada")), "ada online");
  await server.shutdown();
  assertEquals((await socket.closed).code, CloseCode.GOING_AWAY);
  assert(diffs(inbox).some((diff) => diff.leaves.includes("ada")), "no leave before shutdown");
});

Deno.test("PRESENCE_GRACE_MS sets the grace period, a few seconds by default", () => {
  assertEquals(loadConfig([], {}).presenceGraceMs, 3000);
  assertEquals(loadConfig([], { PRESENCE_GRACE_MS: "0" }).presenceGraceMs, 0);
  assertThrows(() => loadConfig([], { PRESENCE_GRACE_MS: "soon" }), Error, "PRESENCE_GRACE_MS");
});

function diffs(inbox: Inbox): PresenceDiff[] {
  return inbox.events.filter((event) => event.type === PRESENCE_DIFF) as PresenceDiff[];
}
