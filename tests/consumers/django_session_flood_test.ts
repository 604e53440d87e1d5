/**
 * One client flooding handshakes with made-up Django session cookies, against a Django view that
 * answers slowly: it gets its share of the questions in flight, not every place, so Django's
 * users from other addresses still connect; the warning is written once, not once per refusal,
 * while each refused handshake keeps its own access line; and every question gives its
 * address's place back, whatever its end.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import type { ConnectResult } from "../../testing/communicator.ts";
import { startFakeDjango } from "../_support/fake_django.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";
import {
  DJANGO_MAX_IN_FLIGHT_PER_ADDRESS as SHARE,
  DjangoSessionIdentity,
} from "../../auth/django_session.ts";
import { QUIET_WARNING_PERIOD_MS } from "../../telemetry/quiet_warning.ts";

const KEY = "k7x2m9q4w8e1r5t3y6u0i2o4p8a1s3d5"; // a Django session key's form
const HOUR_MS = 3600_000;
const FLOODER = "203.0.113.7";
// More handshakes than the process's cap of questions, all from the flooder.
const MAX_IN_FLIGHT = 8;
const FLOOD = MAX_IN_FLIGHT + 4;
const BUSY_REASON = /this address has too many Django session checks under way/;

// A made-up session key, as a flood sends: each one a question to Django.
const madeUpKey = () => crypto.randomUUID().replaceAll("-", "");

// An app behind a trusted proxy, so that each handshake says its client's address.
async function floodedApp(djangoUrl: string) {
  const services = await createTestServices({
    trustProxy: true,
    djangoSession: {
      url: djangoUrl,
      cookie: "sessionid",
      timeoutMs: 30_000,
      secret: "",
      maxInFlight: MAX_IN_FLIGHT,
    },
  });
  const app = createApp({ routes: [socket("/ws/x/", () => ({}))], services, upgrade: testUpgrade });
  return { services, app };
}

function handshake(app: ReturnType<typeof createApp>, address: string, key: string) {
  const headers = { cookie: `sessionid=${key}`, "x-forwarded-for": address };
  return new Communicator(app, "/ws/x/", { headers }).connect();
}

// Starts the flood against a hung view; resolves once Django holds the flooder's share.
async function flood(
  app: ReturnType<typeof createApp>,
  django: ReturnType<typeof startFakeDjango>,
): Promise<Promise<ConnectResult>[]> {
  django.mode = "hang";
  const handshakes = Array.from({ length: FLOOD }, () => handshake(app, FLOODER, madeUpKey()));
  await django.until(() => django.requests.length, SHARE);
  return handshakes;
}

// Runs `body` while the flooder holds its share of a view that hangs, with the log captured.
async function duringLoggedFlood(
  body: (
    app: ReturnType<typeof createApp>,
    django: ReturnType<typeof startFakeDjango>,
    captured: CapturedLog,
    flooding: Promise<ConnectResult>[],
  ) => Promise<void>,
): Promise<void> {
  await using django = startFakeDjango();
  const { services, app } = await floodedApp(django.url);
  await using _services = services;
  try {
    log.setLevel("info");
    using captured = new CapturedLog();
    await body(app, django, captured, await flood(app, django));
  } finally {
    log.setLevel("silent");
    await app.close();
  }
}

Deno.test("a flood of slow Django questions from one address does not refuse another address's user", async () => {
  await using django = startFakeDjango();
  const { services, app } = await floodedApp(django.url);
  await using _services = services;
  django.sessions.set(KEY, { username: "ada", expiresAt: Date.now() + HOUR_MS });
  try {
    const flooding = await flood(app, django);
    django.mode = "normal"; // the flood's questions stay hung; new ones are answered
    const ada = await handshake(app, "198.51.100.20", KEY);
    assertEquals(ada.status, 101, `Ada was refused: ${ada.reason}`);
    await django.stop(); // the flood's hung questions fail: every handshake ends
    const statuses = (await Promise.all(flooding)).map((answer) => answer.status);
    assertEquals(statuses, Array(FLOOD).fill(503));
  } finally {
    await app.close();
  }
});

Deno.test("an address past its share of Django questions in flight is refused with 503 at once", () =>
  duringLoggedFlood(async (app, django, captured, flooding) => {
    const more = await handshake(app, FLOODER, madeUpKey());
    assertEquals(more.status, 503);
    assertMatch(more.reason ?? "", BUSY_REASON);
    assertEquals(django.requests.length, SHARE, "Django was asked only the address's share");
    // Its access line names why: the address's share, not Django (and the proxy's connection).
    const line = (seen: string) =>
      seen.startsWith(`WebSocket REJECT /ws/x/ [${FLOODER} via `) &&
      seen.endsWith(`] (${more.reason})`);
    assertEquals(captured.lines.some(line), true, captured.lines.join("\n"));
    await django.stop();
    const answers = await Promise.all(flooding);
    const busy = answers.filter((answer) => BUSY_REASON.test(answer.reason ?? ""));
    assertEquals(busy.length, FLOOD - SHARE, "all but the share were refused without asking");
  }));

Deno.test("a flood's refusals write one warning, and each handshake its own access line", () =>
  duringLoggedFlood(async (app, django, captured, flooding) => {
    const refused: ConnectResult[] = [];
    for (let i = 0; i < 5; i++) refused.push(await handshake(app, FLOODER, madeUpKey()));
    assertEquals(refused.map((answer) => answer.status), Array(5).fill(503));
    await django.stop();
    await Promise.all(flooding);
    // The flood's: the hung questions' failure, once Django stopped, is another (written too).
    const warnings = captured.lines.filter((line) => / WARN .*has its share/.test(line));
    assertEquals(warnings.length, 1, `warned ${warnings.length} times:\n${warnings.join("\n")}`);
    assertMatch(warnings[0], new RegExp(`${FLOODER} has its share, ${SHARE}, of the questions`));
    const rejects = captured.lines.filter((line) => line.includes("WebSocket REJECT"));
    assertEquals(rejects.length, FLOOD + 5, "one access line per refused handshake");
  }));

Deno.test("after a minute of refusals, one summary line counts them", async () => {
  await using django = startFakeDjango();
  let now = 0;
  const identity = new DjangoSessionIdentity({
    url: django.url,
    timeoutMs: 30_000,
    maxInFlightPerAddress: 1,
    clock: () => now,
  });
  const request = () => new Request("http://x/", { headers: { cookie: `sessionid=${KEY}` } });
  try {
    log.setLevel("warn");
    using captured = new CapturedLog();
    django.mode = "hang";
    const held = identity.identify(request(), FLOODER);
    await django.until(() => django.requests.length, 1);
    for (let i = 0; i < 6; i++) await identity.identify(request(), FLOODER); // the first warns
    now += QUIET_WARNING_PERIOD_MS;
    await identity.identify(request(), FLOODER);
    assertEquals(captured.lines.length, 2, captured.lines.join("\n"));
    assertMatch(captured.lines[0], /Django session check failed \(203\.0\.113\.7 has its share/);
    assertMatch(captured.lines[1], /6 more Django session checks failed since the last warning/);
    await django.stop();
    await held;
  } finally {
    log.setLevel("silent");
  }
});

Deno.test("an address's questions give their places back however they end", async () => {
  await using django = startFakeDjango();
  const identity = new DjangoSessionIdentity({ url: django.url, timeoutMs: 30_000 });
  const request = (signal?: AbortSignal) =>
    new Request("http://x/", { headers: { cookie: `sessionid=${madeUpKey()}` }, signal });
  const quick = new DjangoSessionIdentity({ url: django.url, timeoutMs: 1 });
  log.setLevel("silent");
  // Answered, failed (500), refused past the share, timed out, and left by their client.
  await identity.identify(request(), FLOODER);
  django.mode = "500";
  await identity.identify(request(), FLOODER);
  django.mode = "hang";
  const left = new AbortController();
  const leaving = identity.identify(request(left.signal), FLOODER);
  const hung = Array.from({ length: SHARE - 1 }, () => identity.identify(request(), FLOODER));
  await django.until(() => django.requests.length, 2 + SHARE);
  assertEquals((await identity.identify(request(), FLOODER))?.unavailable !== undefined, true);
  assertEquals(identity.addressesAsking, 1);
  left.abort();
  await leaving;
  await quick.identify(request(), FLOODER); // its own view of the address, timed out
  assertEquals(quick.addressesAsking, 0);
  await django.stop(); // the hung ones fail
  await Promise.all(hung);
  assertEquals(identity.addressesAsking, 0);
});
