/**
 * A consumer moved from Django Channels keeps its user: a browser logged in on the Django site
 * (its `sessionid`) opens a socket here as that user, this server asking Django's who-am-I view
 * (`DJANGO_SESSION_URL`); Django's log-out closes it over channels_redis, and a password change
 * closes the sockets of the sessions it ended; a Django that is down is an outage (503), not
 * anonymous. Django is the fixture project with its log-in
 * (`mysite/settings_auth.py`) under Daphne, on a private redis-server. Skipped with a reason
 * when python3 with Django, Channels, channels_redis and Daphne, or redis-server, is missing;
 * a failure under `CI=true`.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ChannelsRedisLayer } from "../../layers/channels_redis.ts";
import { createTestServices } from "../../testing.ts";
import type { Consumer } from "../../server/consumer.ts";
import type { WebSocketRouteOptions } from "../../server/routes.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { serveRouteWith } from "../_support/serve_consumer.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import {
  type Daphne,
  djangoCreateUser,
  type DjangoLayerSettings,
  djangoUnavailable,
  startDaphne,
} from "./_django.ts";
import { DjangoBrowser } from "./_django_browser.ts";

const PASSWORD = "quiet river stone";
const SECRET = "whoami-secret-for-tests-only-0123";
const WAIT_MS = 15_000;
const missingDjango = await djangoUnavailable();
const { available: redisAvailable } = await redisAvailability({ privateServer: true });
if (missingDjango !== null) console.log(`Skipping the Django log-in tests: ${missingDjango}`);
const ignore = missingDjango !== null || !redisAvailable;

// One Redis and one database for the file: each test has its own prefix and Daphne.
const redis = ignore ? null : await startRedisServer();
const dbDir = ignore ? null : await Deno.makeTempDir({ prefix: "django-auth-" });
const db = dbDir === null ? "" : join(dbDir, "db.sqlite3");
globalThis.addEventListener("unload", () => {
  void redis?.stop();
  if (dbDir !== null) Deno.removeSync(dbDir, { recursive: true });
});
let userMade: Promise<void> | null = null;

/** Django (Daphne) and this server, on one fresh channels_redis prefix; `await using` stops both. */
async function bothSides(options: WebSocketRouteOptions = { loginRequired: true }) {
  const settings: DjangoLayerSettings = {
    redisUrl: redis!.url,
    prefix: uniquePrefix("asgi"),
    auth: { db, secret: SECRET },
  };
  await (userMade ??= djangoCreateUser(settings, "ada", PASSWORD));
  const daphne: Daphne = await startDaphne(settings);
  const layer = await ChannelsRedisLayer.open({ url: settings.redisUrl, prefix: settings.prefix });
  const services = await createTestServices({
    layer: "channels_redis",
    djangoSession: {
      url: `${daphne.origin}/channels/whoami/`,
      cookie: "sessionid",
      timeoutMs: 5000,
      secret: SECRET,
    },
  }, { layer });
  // The consumer moved from Django: it greets `scope.user`, as `scope["user"]` was.
  const consumer: Consumer = (conn) => ({
    connect: () => conn.sendJson({ hello: conn.scope.user.username, id: conn.scope.user.id }),
  });
  const route = serveRouteWith(services, consumer, options);
  return {
    daphne,
    route,
    browser: new DjangoBrowser(daphne.origin),
    /** Another browser on the same site, with no cookies yet. */
    newBrowser: () => new DjangoBrowser(daphne.origin),
    /** Makes a Django user of its own, for a test that changes its password. */
    createUser: (username: string) => djangoCreateUser(settings, username, PASSWORD),
    /** A socket to the moved consumer with the browser's cookies, as a page on the site opens it. */
    open: (browser: DjangoBrowser) =>
      TestSocket.open(route.wsUrl, { headers: { origin: route.origin, cookie: browser.cookie } }),
    async [Symbol.asyncDispose]() {
      await route[Symbol.asyncDispose]();
      await services[Symbol.asyncDispose]();
      await daphne[Symbol.asyncDispose]();
    },
  };
}

Deno.test({
  name: "a browser logged in on Django opens a socket here as its Django user",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    await sides.browser.logIn("ada", PASSWORD);
    const socket = await sides.open(sides.browser);
    // With Django's pk, for a consumer that names its groups by it.
    const greeting = await socket.nextJson(WAIT_MS);
    assertEquals(greeting.hello, "ada");
    assertEquals(Number.isSafeInteger(greeting.id) && (greeting.id as number) > 0, true);
    await socket.close();
  },
});

Deno.test({
  name: "no Django cookie, or one Django does not know, is anonymous: login required refuses",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    const { wsUrl, origin } = sides.route;
    assertEquals(await handshakeStatus(wsUrl, { origin }), 403);
    const forged = { origin, cookie: "sessionid=abcdefghijklmnopqrstuvwxyz012345" };
    assertEquals(await handshakeStatus(wsUrl, forged), 403);
    await using open = await bothSides({});
    const socket = await TestSocket.open(open.route.wsUrl, { headers: { cookie: forged.cookie } });
    assertEquals(await socket.nextJson(WAIT_MS), { hello: null });
    await socket.close();
  },
});

Deno.test({
  name: "logging out on Django closes the open socket with 4001, over channels_redis",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    await sides.browser.logIn("ada", PASSWORD);
    const socket = await sides.open(sides.browser);
    assertEquals((await socket.nextJson(WAIT_MS)).hello, "ada");
    await sides.browser.logOut();
    assertEquals(await socket.closedWithin(WAIT_MS), { code: 4001, reason: "Logged out" });
  },
});

Deno.test({
  name: "with Django stopped, a handshake with its session cookie gets 503, not anonymous",
  ignore,
  fn: async () => {
    await using sides = await bothSides({});
    await sides.browser.logIn("ada", PASSWORD);
    await sides.daphne[Symbol.asyncDispose]();
    const headers = { origin: sides.route.origin, cookie: sides.browser.cookie };
    assertEquals(await handshakeStatus(sides.route.wsUrl, headers), 503);
  },
});

Deno.test({
  name:
    "a password change on Django closes the sockets of the sessions it ended with 4002: the changing browser's come back signed in, the others' are refused",
  ignore,
  fn: async () => {
    await using sides = await bothSides();
    await sides.createUser("grace"); // not ada: the other tests log in with her password
    const [changing, other] = [sides.newBrowser(), sides.newBrowser()];
    await changing.logIn("grace", PASSWORD);
    await other.logIn("grace", PASSWORD);
    const [changingSocket, otherSocket] = [await sides.open(changing), await sides.open(other)];
    assertEquals((await changingSocket.nextJson(WAIT_MS)).hello, "grace");
    assertEquals((await otherSocket.nextJson(WAIT_MS)).hello, "grace");
    const oldKey = changing.sessionKey;
    await changing.changePassword(PASSWORD, "a brand new secret phrase");
    const closed = { code: 4002, reason: "Password changed" };
    assertEquals(await otherSocket.closedWithin(WAIT_MS), closed);
    assertEquals(await changingSocket.closedWithin(WAIT_MS), closed);
    // Reconnecting, as the client module does on 4002: the other session is anonymous now.
    const headers = { origin: sides.route.origin, cookie: other.cookie };
    assertEquals(await handshakeStatus(sides.route.wsUrl, headers), 403);
    assert(changing.sessionKey !== oldKey, "Django gave the changing session a new key");
    const again = await sides.open(changing);
    assertEquals((await again.nextJson(WAIT_MS)).hello, "grace");
    await again.close();
  },
});
