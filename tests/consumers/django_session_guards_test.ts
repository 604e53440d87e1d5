/**
 * What keeps a Django session (`DJANGO_SESSION_URL`) from being more than it is, and Django's
 * view from being asked more than it must: a Django user whose name is one of this server's
 * accounts is refused, not taken for that account; a cross-site handshake is refused before
 * Django is asked; questions in flight are capped and dropped with their client; a layer gap
 * asks once per session.
 */
import { assertEquals } from "@std/assert";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { adminRoutes } from "../../routes/admin.ts";
import { AdminStats } from "../../consumers/admin.ts";
import { startFakeDjango, UNASKED_DJANGO } from "../_support/fake_django.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import { LAYER_GAP } from "../../layers/layer.ts";
import { sessionGroup } from "../../auth/sessions.ts";

const KEY = "k7x2m9q4w8e1r5t3y6u0i2o4p8a1s3d5"; // a Django session key's form
const HOUR_MS = 3600_000;

Deno.test("a Django user named as one of this server's accounts is refused, not given its staff", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  await services.users.create("admin", "quiet river stone", { staff: true });
  // Another person: Django's usernames are case-sensitive, ours fold case.
  django.sessions.set(KEY, { username: "Admin", expiresAt: Date.now() + HOUR_MS });
  const stats = new AdminStats(services, { intervalMs: 50, leaseMs: 300, heartbeatMs: 100 });
  await stats.ready;
  const routes = [...adminRoutes(services, stats), socket("/ws/who/", () => ({}))];
  const app = createApp({ routes, services, upgrade: testUpgrade, owns: [stats] });
  try {
    log.setLevel("warn");
    using captured = new CapturedLog();
    const headers = { cookie: `sessionid=${KEY}` };
    const admin = await new Communicator(app, "/ws/admin/", { headers }).connect();
    assertEquals(admin.status, 403);
    await captured.waitFor(
      /Django's user "Admin" refused: the name is this server's account "admin"/,
    );
    // Refused on any route, not only a staff one: every look-up by name would take it for ours.
    const plain = await new Communicator(app, "/ws/who/", { headers }).connect();
    assertEquals(plain.status, 403);
  } finally {
    log.setLevel("silent");
    await app.close();
  }
});

Deno.test("a Django user whose name passes for an account's, or for a name the app reserves, is refused", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices(
    {
      djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
    },
    {},
    { reservedUsernames: ["Server", "Dice"] },
  );
  await services.users.create("carol", "quiet river stone");
  const app = createApp({
    routes: [socket("/ws/who/", () => ({}))],
    services,
    upgrade: testUpgrade,
  });
  try {
    log.setLevel("warn");
    using captured = new CapturedLog();
    // A Cyrillic "с"; the chat's author for messages from outside; the same with a Cyrillic "е".
    const refusals = [
      [
        "\u0441arol",
        /Django's user "\u0441arol" refused: the name passes for this server's account "carol"/,
      ],
      [
        "server",
        /Django's user "server" refused: the name passes for "Server", which this site shows for no account/,
      ],
      ["S\u0435rver", /Django's user "S\u0435rver" refused: the name passes for "Server"/],
      // A zero-width space, which a custom Django user model may allow.
      ["Dice\u200b", /Django's user "Dice\u200b" refused: the name passes for "Dice"/],
    ] as const;
    for (const [index, [username, line]] of refusals.entries()) {
      const key = `${KEY.slice(0, -1)}${index}`;
      django.sessions.set(key, { username, expiresAt: Date.now() + HOUR_MS });
      const headers = { cookie: `sessionid=${key}` };
      const comm = new Communicator(app, "/ws/who/", { headers });
      assertEquals((await comm.connect()).status, 403, username);
      await captured.waitFor(line);
    }
    // A name of its own connects.
    django.sessions.set(KEY, { username: "dave", expiresAt: Date.now() + HOUR_MS });
    const dave = new Communicator(app, "/ws/who/", { headers: { cookie: `sessionid=${KEY}` } });
    assertEquals((await dave.connect()).status, 101);
    await dave.disconnect();
  } finally {
    log.setLevel("silent");
    await app.close();
  }
});

Deno.test("a Django user says in its scope that it signed in at Django, with Django's id", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  const consumer = socket("/ws/who/", (conn) => ({
    connect: () => {
      const { source, id } = conn.scope.user;
      conn.sendJson({ source: source ?? "here", ...(id !== undefined && { id }) });
    },
  }));
  const app = createApp({ routes: [consumer], services, upgrade: testUpgrade });
  try {
    // Without an id, with a number, with a string (a UUID key), with one no group could use.
    // A key past 2^53 as a number: two users could share it.
    const users = [
      [undefined, 101],
      [42, 101],
      ["7f3c-uuid", 101],
      ["1234567890123456789", 101],
      [{ pk: 1 }, 503],
      [1234567890123456789, 503],
    ] as const;
    for (const [index, [id, status]] of users.entries()) {
      const key = `${KEY.slice(0, -1)}${index}`;
      django.sessions.set(key, { username: `ada${index}`, expiresAt: Date.now() + HOUR_MS, id });
      const comm = new Communicator(app, "/ws/who/", { headers: { cookie: `sessionid=${key}` } });
      assertEquals((await comm.connect()).status, status, JSON.stringify(id));
      if (status !== 101) continue;
      assertEquals(await comm.receiveJson(), { source: "django", ...(id !== undefined && { id }) });
      await comm.disconnect();
    }
  } finally {
    await app.close();
  }
});

Deno.test("a cross-site handshake is refused before Django is asked, even while Django fails", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const app = createApp({ routes: [socket("/ws/x/", () => ({}))], services, upgrade: testUpgrade });
  try {
    const headers = { cookie: `sessionid=${KEY}`, origin: "https://evil.example" };
    assertEquals((await new Communicator(app, "/ws/x/", { headers }).connect()).status, 403);
    django.mode = "500";
    assertEquals((await new Communicator(app, "/ws/x/", { headers }).connect()).status, 403);
    assertEquals(django.requests.length, 0, "Django is never asked for a cross-site page");
  } finally {
    await app.close();
  }
});

Deno.test("past its cap of questions in flight to Django, a handshake is refused with 503 at once", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: {
      url: django.url,
      cookie: "sessionid",
      timeoutMs: 30_000,
      secret: "",
      maxInFlight: 2,
    },
  });
  const app = createApp({ routes: [socket("/ws/x/", () => ({}))], services, upgrade: testUpgrade });
  const headers = { cookie: `sessionid=${KEY}` };
  try {
    django.mode = "hang";
    const hung = [1, 2].map(() => new Communicator(app, "/ws/x/", { headers }).connect());
    await django.until(() => django.requests.length, 2);
    log.setLevel("warn");
    using captured = new CapturedLog();
    assertEquals((await new Communicator(app, "/ws/x/", { headers }).connect()).status, 503);
    await captured.waitFor(
      /2 questions to http:\/\/127\.0\.0\.1:\d+\/channels\/whoami\/ in flight/,
    );
    assertEquals(django.requests.length, 2, "the third handshake was not queued behind them");
    await django.stop(); // answers the hung two, which fail (503) and free their places
    assertEquals((await Promise.all(hung)).map((answer) => answer.status), [503, 503]);
  } finally {
    log.setLevel("silent");
    await app.close();
  }
});

Deno.test("a client that leaves while Django is asked drops the question", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 30_000, secret: "" },
  });
  const app = createApp({ routes: [socket("/ws/x/", () => ({}))], services, upgrade: testUpgrade });
  try {
    django.mode = "hang";
    const comm = new Communicator(app, "/ws/x/", { headers: { cookie: `sessionid=${KEY}` } });
    const answer = comm.connect();
    await django.until(() => django.requests.length, 1);
    const left = comm.disconnect();
    await django.until(() => django.abandoned, 1);
    assertEquals((await answer).status, 499);
    await left;
  } finally {
    await app.close();
  }
});

Deno.test("a layer gap asks Django once for all the sockets of one session", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const echo = socket("/ws/x/", (conn) => ({ receive: (text) => conn.send(text) }));
  const app = createApp({ routes: [echo], services, upgrade: testUpgrade });
  const tabs: Communicator[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const tab = new Communicator(app, "/ws/x/", { headers: { cookie: `sessionid=${KEY}` } });
      assertEquals((await tab.connect()).status, 101);
      tabs.push(tab);
    }
    const asked = django.requests.length;
    await services.layer.groupSend(await sessionGroup(KEY), { type: LAYER_GAP });
    // Each echo runs in turn after its socket's check.
    for (const tab of tabs) tab.send("still here");
    for (const tab of tabs) assertEquals(await tab.receive(), "still here");
    assertEquals(django.requests.length - asked, 1, "one question for the five sockets");
  } finally {
    for (const tab of tabs) await tab.disconnect();
    await app.close();
  }
});

Deno.test("a valid access token opens the socket beside a Django cookie while Django fails", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  await services.users.create("ada", "quiet river stone");
  const { token } = await services.tokens.create("ada");
  const greet = socket("/ws/x/", (conn) => ({
    connect: () => conn.sendJson({ hello: conn.scope.user.username }),
  }));
  const app = createApp({ routes: [greet], services, upgrade: testUpgrade });
  try {
    django.mode = "500";
    const cookie = `sessionid=${KEY}`;
    const headers = { authorization: `Bearer ${token}`, cookie };
    const comm = new Communicator(app, "/ws/x/", { headers });
    assertEquals((await comm.connect()).status, 101);
    assertEquals(await comm.receiveJson(), { hello: "ada" });
    await comm.disconnect();
    // Without a valid token, Django's outage is still an outage, not anonymous.
    const bad = { authorization: "Bearer nonsense", cookie };
    assertEquals((await new Communicator(app, "/ws/x/", { headers: bad }).connect()).status, 503);
  } finally {
    await app.close();
  }
});

Deno.test("the start warns when Django's session cookie has this server's cookie's name", async () => {
  const djangoSession = UNASKED_DJANGO;
  using captured = new CapturedLog();
  await using _same = await createTestServices({ logLevel: "info", djangoSession });
  await captured.waitFor(/DJANGO_SESSION_COOKIE is sessionid, this server's own session cookie/);
  const renamed = { ...djangoSession, cookie: "django_sessionid" };
  await using _renamed = await createTestServices({ logLevel: "info", djangoSession: renamed });
  await captured.waitFor(/Django session cookie \(django_sessionid\) are identified/);
  log.setLevel("silent");
  const warned = captured.lines.filter((line) => line.includes("DJANGO_SESSION_COOKIE is"));
  assertEquals(warned.length, 1, "no warning for a cookie of another name");
});

Deno.test("a handshake joining after a Django log-out asks again, not sharing a question from before it", async () => {
  // A fake Django whose answer to the second question (handshake A's, after its join) is held:
  // sent while the session still lived, it must not answer B, which joined after the log-out.
  let live = true;
  const asked: boolean[] = [];
  const held = Promise.withResolvers<void>();
  const seen = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  await using django = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    asked.push(live);
    const answer = live
      ? { authenticated: true, username: "ada", expires_at: Date.now() / 1000 + 3600 }
      : { authenticated: false };
    if (asked.length === 2) {
      seen[0].resolve();
      await held.promise;
    }
    if (asked.length === 4) seen[1].resolve();
    return Response.json(answer);
  });
  const url = `http://127.0.0.1:${django.addr.port}/whoami/`;
  await using services = await createTestServices({
    djangoSession: { url, cookie: "sessionid", timeoutMs: 10_000, secret: "" },
  });
  const bInConnect = Promise.withResolvers<void>();
  const bGoesOn = Promise.withResolvers<void>();
  const consumer = socket("/ws/:tab/", (conn) => ({
    async connect() {
      if (conn.scope.path !== "/ws/b/") return;
      bInConnect.resolve();
      await bGoesOn.promise;
    },
  }));
  const app = createApp({ routes: [consumer], services, upgrade: testUpgrade });
  try {
    const headers = { cookie: `sessionid=${KEY}` };
    const a = new Communicator(app, "/ws/a/", { headers });
    const aConnected = a.connect(); // who (live), then its read after the join: held
    await seen[0].promise;
    const b = new Communicator(app, "/ws/b/", { headers });
    const bConnected = b.connect(); // who (live), then its connect waits
    await bInConnect.promise;
    live = false; // the log-out in Django, and its signal's close to the session's group
    const close = { type: "connection.close", code: 4001, reason: "Logged out" };
    await services.layer.groupSend(await sessionGroup(KEY), close);
    bGoesOn.resolve(); // B joins the group now, after the close went
    // B's own question (the fourth); a shared one never comes, so the wait is bounded.
    await Promise.race([seen[1].promise, new Promise((resolve) => setTimeout(resolve, 1000))]);
    held.resolve();
    assertEquals((await bConnected).status, 403, `Django was asked: ${asked.join(", ")}`);
    assertEquals((await aConnected).status, 101);
    assertEquals(await a.waitForClose(), 4001);
  } finally {
    held.resolve();
    await app.close();
  }
});

Deno.test("a socket that closes while its recheck's spread wait runs is not held by it", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const app = createApp({ routes: [socket("/ws/x/", () => ({}))], services, upgrade: testUpgrade });
  const random = Math.random;
  Math.random = () => 0.999; // the longest spread wait (about 500 ms), not a chance of one
  try {
    const tab = new Communicator(app, "/ws/x/", { headers: { cookie: `sessionid=${KEY}` } });
    assertEquals((await tab.connect()).status, 101);
    const asked = django.requests.length;
    await services.layer.groupSend(await sessionGroup(KEY), { type: LAYER_GAP });
    await tab.disconnect(); // its disconnect ran: the wait did not hold it
    assertEquals(django.requests.length, asked, "closed before the recheck's question went");
    await django.until(() => django.requests.length, asked + 1); // the shared question, later
  } finally {
    Math.random = random;
    await app.close();
  }
});
