/**
 * `WS /ws/admin/`: staff only; a staff socket gets each process's row every interval while it
 * is open, with the figures moving with the traffic, and the rows stop once no admin socket
 * is left.
 */
import { assert, assertEquals } from "@std/assert";
import { createApp, type Services, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import {
  ADMIN_ROW,
  ADMIN_STATS_GROUP,
  adminConsumer,
  type AdminRow,
  AdminStats,
} from "../../consumers/admin.ts";
import { adminRoutes } from "../../routes/admin.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

const PASSWORD = "quiet river stone";
const TIMERS = { intervalMs: 50, leaseMs: 300, heartbeatMs: 100 };

async function adminApp(services: Services) {
  const stats = new AdminStats(services, TIMERS);
  await stats.ready;
  const echo = socket("/ws/echo/:id/", (conn) => ({
    connect: () => conn.groupAdd("echo.room"),
    receive: (text) => conn.send(text),
  }));
  const app = createApp({
    routes: [...adminRoutes(services, stats), echo],
    services,
    upgrade: testUpgrade,
    owns: [stats],
  });
  return app;
}

async function cookieFor(services: Services, username: string, staff: boolean) {
  await services.users.create(username, PASSWORD, { staff });
  const { id } = await services.sessions.create(username);
  return { cookie: `sessionid=${id}` };
}

/** The next row whose figures satisfy `check`. */
async function rowWhere(comm: Communicator, check: (row: AdminRow) => boolean): Promise<AdminRow> {
  for (;;) {
    const row = await comm.receiveJson<AdminRow & { type: string }>();
    assertEquals(row.type, ADMIN_ROW);
    if (check(row)) return row;
  }
}

Deno.test("anonymous and non-staff users cannot open the admin socket", async () => {
  await using services = await createTestServices();
  const app = await adminApp(services);
  try {
    const anonymous = new Communicator(app, "/ws/admin/");
    assertEquals((await anonymous.connect()).status, 403);
    const bob = new Communicator(app, "/ws/admin/", {
      headers: await cookieFor(services, "bob", false),
    });
    using captured = new CapturedLog();
    log.setLevel("info");
    assertEquals((await bob.connect()).status, 403);
    await captured.waitFor(/^WebSocket REJECT \/ws\/admin\/ .*staff users only/);
  } finally {
    await app.close();
  }
});

Deno.test("a staff socket gets this process's row, live, and rows stop when it leaves", async () => {
  await using services = await createTestServices();
  const app = await adminApp(services);
  try {
    const admin = new Communicator(app, "/ws/admin/", {
      headers: await cookieFor(services, "ada", true),
    });
    assert((await admin.connect()).accepted);
    // The first row may be taken before the admin socket itself counts as open.
    const first = await rowWhere(admin, (row) => row.connections === 1);
    assertEquals(first.process, services.metrics.process);

    const client = new Communicator(app, "/ws/echo/1/");
    assert((await client.connect()).accepted);
    for (let i = 0; i < 5; i++) client.send(`hello ${i}`);
    for (let i = 0; i < 5; i++) await client.receive();
    const busy = await rowWhere(
      admin,
      (row) => row.connections === 2 && row.framesReceived >= 5 && row.inPerSecond > 0,
    );
    assertEquals(
      busy.routes.find((route) => route.route === "/ws/echo/:id/")?.open,
      1,
    );
    assertEquals(
      busy.largestGroups.find((group) => group.group === "echo.room")?.members,
      1,
    );
    assert(busy.largestGroups.some((group) => group.group === ADMIN_STATS_GROUP));
    assert(busy.rssBytes > 0);
    await client.disconnect();
    await rowWhere(admin, (row) => row.connections === 1);

    // Once no admin socket is left, the lease runs out and nothing more is published.
    await admin.disconnect();
    const listener = services.layer.newChannel(() => {
      heard++;
      return true;
    });
    let heard = 0;
    await services.layer.groupAdd(ADMIN_STATS_GROUP, listener);
    await new Promise((resolve) => setTimeout(resolve, TIMERS.leaseMs + 2 * TIMERS.intervalMs));
    heard = 0;
    await new Promise((resolve) => setTimeout(resolve, 4 * TIMERS.intervalMs));
    assertEquals(heard, 0, "rows were still published with no admin socket open");
    await services.layer.closeChannel(listener);
  } finally {
    await app.close();
  }
});

Deno.test("rows from every process reach the admin socket over the layer", async () => {
  await using services = await createTestServices();
  const app = await adminApp(services);
  // A second process on the same layer: its own metrics and publisher.
  await using other = await createTestServices({}, {
    layer: services.layer,
    store: services.store,
  });
  const otherStats = new AdminStats(other, TIMERS);
  await otherStats.ready;
  try {
    const admin = new Communicator(app, "/ws/admin/", {
      headers: await cookieFor(services, "ada", true),
    });
    assert((await admin.connect()).accepted);
    const seen = new Set<string>();
    while (seen.size < 2) seen.add((await rowWhere(admin, () => true)).process);
    assert(seen.has(services.metrics.process) && seen.has(other.metrics.process));
    await admin.disconnect();
  } finally {
    await otherStats.close();
    await app.close();
  }
});

Deno.test("the admin consumer refuses a user without a record", async () => {
  await using services = await createTestServices();
  const stats = new AdminStats(services, TIMERS);
  try {
    const comm = new Communicator(
      { consumer: adminConsumer(services, stats), services },
      "/ws/admin/",
      { user: { username: "ghost", isAuthenticated: true } },
    );
    assertEquals((await comm.connect()).status, 403);
  } finally {
    await stats.close();
  }
});
