/**
 * Sockets identified by a Django project's session (`DJANGO_SESSION_URL`), against a stand-in
 * for Django's who-am-I view: the Django user opens a login-required socket, a cookie Django
 * does not know is anonymous, a Django that cannot answer is an outage (503), and Django's
 * log-out and the session's expiry close the socket with 4001. The same against real Django is
 * `tests/interop/django_auth_test.ts`.
 */
import { assert, assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import {
  type FakeDjango,
  type FakeDjangoMode,
  startFakeDjango,
  UNASKED_DJANGO,
} from "../_support/fake_django.ts";
import type { Consumer } from "../../server/consumer.ts";
import type { WebSocketRouteOptions } from "../../server/routes.ts";
import { serveRouteWith } from "../_support/serve_consumer.ts";
import { log } from "../../telemetry/log.ts";
import { LAYER_GAP } from "../../layers/layer.ts";
import { createTestServices } from "../../testing.ts";

const KEY = "k7x2m9q4w8e1r5t3y6u0i2o4p8a1s3d5"; // a Django session key's form
const HOUR_MS = 3600_000;

/** A test server that asks `django` who a `sessionid` cookie names. */
function serverAsking(django: FakeDjango, secret = ""): Promise<TestServer> {
  return startTestServer({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 300, secret },
  });
}

/** A route on `server`'s services that greets the user by name, then echoes. */
function greetingRoute(
  server: TestServer,
  options: WebSocketRouteOptions = { loginRequired: true },
) {
  const consumer: Consumer = (conn) => ({
    connect: () => conn.sendJson({ hello: conn.scope.user.username }),
    receive: (text) => conn.send(text),
  });
  return serveRouteWith(server.app.services, consumer, options);
}

/** The group Django's `user_logged_out` handler sends to, computed as the Python snippet does. */
async function djangoSessionGroup(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0"));
  return `session.${hex.join("").slice(0, 32)}`;
}

Deno.test("a Django session cookie opens a login-required socket as Django's user", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django, "s".repeat(32));
  await using route = greetingRoute(server);
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { origin: route.origin, cookie: `theme=dark; sessionid=${KEY}; csrftoken=abc` },
  });
  assertEquals(await socket.nextJson(), { hello: "ada" });
  // Only the session cookie goes to Django, with the shared secret.
  assertEquals(django.requests[0], {
    cookie: `sessionid=${KEY}`,
    authorization: `Bearer ${"s".repeat(32)}`,
  });
  await socket.close();
});

Deno.test("no Django cookie, or one Django does not know, is anonymous: login required refuses", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = greetingRoute(server);
  assertEquals(await handshakeStatus(route.wsUrl, { origin: route.origin }), 403);
  const unknown = { origin: route.origin, cookie: `sessionid=${KEY}` };
  assertEquals(await handshakeStatus(route.wsUrl, unknown), 403);
  await using open = greetingRoute(server, {});
  const socket = await TestSocket.open(open.wsUrl, { headers: { cookie: `sessionid=${KEY}` } });
  assertEquals(await socket.nextJson(), { hello: null });
  await socket.close();
});

Deno.test("a Django that fails, hangs, answers nonsense or is gone: 503, never anonymous", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = greetingRoute(server, {}); // anonymous allowed: a 200 would be anonymous
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const headers = { origin: route.origin, cookie: `sessionid=${KEY}` };
  const expected: [FakeDjangoMode | "stopped", RegExp][] = [
    ["500", /answered 500/],
    ["400", /answered 400 \(is the host of DJANGO_SESSION_URL in Django's ALLOWED_HOSTS\?\)/],
    ["hang", /did not answer within 300 ms/],
    ["malformed", /malformed JSON/],
    ["huge", /more than 4096 bytes/],
    ["stopped", /could not be reached/],
  ];
  log.setLevel("warn");
  using captured = new CapturedLog();
  for (const [mode, line] of expected) {
    if (mode === "stopped") await django.stop();
    else django.mode = mode;
    assertEquals(await handshakeStatus(route.wsUrl, headers), 503, mode);
    await captured.waitFor(line);
  }
  log.setLevel("silent");
  assert(!captured.lines.some((line) => line.includes(KEY)), "the cookie is never logged");
});

Deno.test("a log line gives the view's URL without the query it may hold a secret in", async () => {
  await using django = startFakeDjango();
  const url = `${django.url}?key=hidden-in-the-query`;
  await using server = await startTestServer({
    djangoSession: { url, cookie: "sessionid", timeoutMs: 300, secret: "" },
  });
  await using route = greetingRoute(server, {});
  django.mode = "500";
  log.setLevel("warn");
  using captured = new CapturedLog();
  const headers = { cookie: `sessionid=${KEY}` };
  assertEquals(await handshakeStatus(route.wsUrl, headers), 503);
  const line = await captured.waitFor(/answered 500/);
  log.setLevel("silent");
  assert(line.includes(django.url) && !line.includes("hidden"), line);
});

Deno.test("Django's log-out, sent to the session's group, closes the socket with 4001", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = greetingRoute(server);
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { origin: route.origin, cookie: `sessionid=${KEY}` },
  });
  await socket.nextJson();
  const event = { type: "connection.close", code: 4001, reason: "Logged out" };
  await server.app.services.layer.groupSend(await djangoSessionGroup(KEY), event);
  assertEquals(await socket.closedWithin(), { code: 4001, reason: "Logged out" });
});

Deno.test("a socket closes with 4001 when the Django session it was opened with expires", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = greetingRoute(server);
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + 1000 });
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { origin: route.origin, cookie: `sessionid=${KEY}` },
  });
  assertEquals(await socket.nextJson(), { hello: "ada" });
  assertEquals(await socket.closedWithin(), {
    code: 4001,
    reason: "Session expired: log in again",
  });
});

Deno.test("a socket whose Django session logs out while it connects is refused", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  const consumer: Consumer = () => ({
    // Django's log-out lands while `connect` runs: before the socket is in the group.
    connect: () => void django.sessions.delete(KEY),
  });
  await using route = serveRouteWith(server.app.services, consumer, { loginRequired: true });
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const headers = { origin: route.origin, cookie: `sessionid=${KEY}` };
  assertEquals(await handshakeStatus(route.wsUrl, headers), 403);
  assertEquals(route.live.size, 0);
});

Deno.test("a socket whose Django log-out close was lost asks Django again when the layer reports a gap", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = greetingRoute(server);
  const open = async (key: string) => {
    django.sessions.set(key, { username: "ada", expiresAt: Date.now() + HOUR_MS });
    const socket = await TestSocket.open(route.wsUrl, {
      headers: { origin: route.origin, cookie: `sessionid=${key}` },
    });
    await socket.nextJson();
    return socket;
  };
  const other = KEY.replace("k", "j");
  const [loggedOut, kept] = [await open(KEY), await open(other)];
  // As a Django log-out whose close never arrived (a Redis subscription down meanwhile).
  django.sessions.delete(KEY);
  const { layer } = server.app.services;
  await layer.groupSend(await djangoSessionGroup(KEY), { type: LAYER_GAP });
  await layer.groupSend(await djangoSessionGroup(other), { type: LAYER_GAP });
  assertEquals(await loggedOut.closedWithin(), { code: 4001, reason: "Logged out" });
  // The echo runs in turn after the gap's check: a session Django still knows keeps its socket.
  kept.send("still here");
  assertEquals(await kept.next(), "still here");
  assertEquals(django.requests.length, 6, "each handshake asked twice, each gap once more");
  await kept.close();
});

Deno.test("with the Django bridge on, this server's own log-in still opens sockets", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = greetingRoute(server);
  const ada = new WebClient(server.url);
  await ada.signUp("grace", "quiet river stone");
  await ada.logIn("grace", "quiet river stone");
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { ...ada.socketHeaders(), origin: route.origin },
  });
  assertEquals(await socket.nextJson(), { hello: "grace" });
  assertEquals(django.requests.length, 0, "a session of ours is not asked of Django");
  await socket.close();
});

Deno.test("the start warns that Django's log-out cannot reach sockets on a layer Django does not share", async () => {
  const djangoSession = UNASKED_DJANGO;
  using captured = new CapturedLog();
  await using _memory = await createTestServices({ logLevel: "info", djangoSession });
  await captured.waitFor(/cannot close this server's sockets with LAYER=memory/);
  log.setLevel("silent");
});
