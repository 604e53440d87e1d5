/**
 * What keeps a Django session (`DJANGO_SESSION_URL`) from being more than it is: a Django user
 * whose name is one of this server's accounts is refused, not taken for that account.
 */
import { assertEquals } from "@std/assert";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { adminRoutes } from "../../routes/admin.ts";
import { AdminStats } from "../../consumers/admin.ts";
import { startFakeDjango } from "../_support/fake_django.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

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

Deno.test("a Django user says in its scope that it signed in at Django", async () => {
  await using django = startFakeDjango();
  await using services = await createTestServices({
    djangoSession: { url: django.url, cookie: "sessionid", timeoutMs: 1000, secret: "" },
  });
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  const consumer = socket("/ws/who/", (conn) => ({
    connect: () => conn.sendJson({ source: conn.scope.user.source ?? "here" }),
  }));
  const app = createApp({ routes: [consumer], services, upgrade: testUpgrade });
  try {
    const comm = new Communicator(app, "/ws/who/", { headers: { cookie: `sessionid=${KEY}` } });
    assertEquals((await comm.connect()).status, 101);
    assertEquals(await comm.receiveJson(), { source: "django" });
    await comm.disconnect();
  } finally {
    await app.close();
  }
});
