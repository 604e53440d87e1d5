/**
 * A password change in Django ends its user's sessions without a log-out to tell: the README's
 * receiver sends `{"type": "session.recheck"}` to the user's group, and each socket opened
 * with one of that user's Django sessions asks Django again, one question per session. Against
 * a stand-in for Django's who-am-I view; the same against real Django is
 * `tests/interop/django_auth_test.ts`.
 */
import { assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { type FakeDjango, startFakeDjango } from "../_support/fake_django.ts";
import type { Consumer } from "../../server/consumer.ts";
import { serveRouteWith } from "../_support/serve_consumer.ts";

const HOUR_MS = 3600_000;
// Django session keys' form.
const [ENDED, KEPT, OTHER_USER] = ["a", "b", "c"].map((c) => c.repeat(32));

/** The group the README's password-change receiver sends to, computed as the Python does. */
async function djangoUserGroup(username: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(username));
  const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0"));
  return `django_user.${hex.join("").slice(0, 32)}`;
}

function serverAsking(django: FakeDjango): Promise<TestServer> {
  return startTestServer({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 300, secret: "" },
  });
}

/** A login-required echo route whose sockets report their `disconnect`. */
function echoRoute(server: TestServer, disconnected: (user: string | null) => void) {
  const consumer: Consumer = (conn) => ({
    connect: () => conn.sendJson({ hello: conn.scope.user.username }),
    receive: (text) => conn.send(text),
    disconnect: () => disconnected(conn.scope.user.username),
  });
  return serveRouteWith(server.app.services, consumer, { loginRequired: true });
}

Deno.test("a session.recheck to a Django user's group closes with 4002 the sockets whose session Django no longer names", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = echoRoute(server, () => {});
  const open = async (key: string, username: string) => {
    django.sessions.set(key, { username, expiresAt: Date.now() + HOUR_MS });
    const socket = await TestSocket.open(route.wsUrl, {
      headers: { origin: route.origin, cookie: `sessionid=${key}` },
    });
    assertEquals(await socket.nextJson(), { hello: username });
    return socket;
  };
  const ended = [await open(ENDED, "ada"), await open(ENDED, "ada")];
  const kept = await open(KEPT, "ada");
  const otherUser = await open(OTHER_USER, "grace");
  const handshakes = django.requests.length;
  // Ada's password changed: Django no longer names the session ENDED; KEPT still names her.
  django.sessions.delete(ENDED);
  const event = { type: "session.recheck", reason: "Password changed" };
  await server.app.services.layer.groupSend(await djangoUserGroup("ada"), event);
  for (const socket of ended) {
    assertEquals(await socket.closedWithin(), { code: 4002, reason: "Password changed" });
  }
  // The echo runs in turn after the recheck: a session Django still names keeps its socket.
  kept.send("still here");
  assertEquals(await kept.next(), "still here");
  otherUser.send("not asked");
  assertEquals(await otherUser.next(), "not asked");
  assertEquals(django.requests.length - handshakes, 2, "one question per session of ada's");
  await kept.close();
  await otherUser.close();
});

Deno.test("a socket opened with a Django session leaves its user's group when it closes", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  const { promise: gone, resolve } = Promise.withResolvers<string | null>();
  await using route = echoRoute(server, resolve);
  django.sessions.set(KEPT, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { origin: route.origin, cookie: `sessionid=${KEPT}` },
  });
  await socket.nextJson();
  const { layer } = server.app.services;
  const group = await djangoUserGroup("ada");
  const ping = { type: "chat.message", text: "ignored by the consumer" };
  assertEquals((await layer.groupSend(group, ping)).delivered, 1, "in the group while open");
  // A recheck without a reason says the generic one.
  django.sessions.delete(KEPT);
  await layer.groupSend(group, { type: "session.recheck" });
  assertEquals(await socket.closedWithin(), { code: 4002, reason: "Session changed: reconnect" });
  assertEquals(await gone, "ada");
  assertEquals((await layer.groupSend(group, ping)).delivered, 0, "left the group at close");
});

Deno.test("a burst of session.recheck events asks Django once or twice, and holds the socket's frames no longer", async () => {
  await using django = startFakeDjango();
  await using server = await serverAsking(django);
  await using route = echoRoute(server, () => {});
  django.sessions.set(KEPT, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const socket = await TestSocket.open(route.wsUrl, {
    headers: { origin: route.origin, cookie: `sessionid=${KEPT}` },
  });
  await socket.nextJson();
  const before = django.requests.length;
  const group = await djangoUserGroup("ada");
  for (let n = 0; n < 50; n++) {
    await server.app.services.layer.groupSend(group, { type: "session.recheck" });
  }
  socket.send("echo me");
  assertEquals(await socket.next(), "echo me"); // neither dropped nor closed (1013)
  const asked = django.requests.length - before;
  // One re-check waiting serves the burst; one more may follow an event that came while it ran.
  assertEquals(asked >= 1 && asked <= 2, true, `Django asked ${asked} times for 50 events`);
  await socket.close();
});
