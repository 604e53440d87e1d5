/** Metrics that move with traffic: sockets by route pattern, refusals, Redis, groups, CPU. */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { InMemoryLayer, ServerMetrics } from "../../mod.ts";
import { sessionGroup } from "../../auth/sessions.ts";
import { browserGroup } from "../../auth/browser_group.ts";
import { tokenGroup } from "../../auth/token_revocations.ts";
import { closeRedis, connectRedis, redisConnectionStatus } from "../../storage/redis_connection.ts";
import { redisAvailability, startRedisServer } from "../_support/redis.ts";
import { startTestServer } from "../_support/server.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { echo, parse, type Samples, scrape, testApp, TOKEN } from "./_metrics_support.ts";

Deno.test("an app of many socket routes is scraped whole, whatever its sockets did", async () => {
  const services = await createTestServices({ metricsToken: TOKEN });
  // 120 socket routes: 10 refusal reasons and 14 close codes each pass 1,000 series a family.
  const app = createApp({
    routes: Array.from({ length: 120 }, (_, i) => socket(`/ws/app${i}/`, echo)),
    services,
  });
  try {
    const codes = [1000, 1001, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 4001, 4999];
    for (let i = 0; i < 120; i++) {
      const meter = services.metrics.route(`/ws/app${i}/`);
      for (const code of codes) {
        meter.open++;
        meter.closed(code);
      }
    }
    const samples = await scrape(app);
    assertEquals(samples.get('channels_closes_total{route="/ws/app119/",code="1013"}'), 1);
    assertEquals(
      samples.get('channels_handshakes_refused_total{route="/ws/app119/",reason="origin"}'),
      0,
    );
  } finally {
    await app.close();
    await services[Symbol.asyncDispose]();
  }
});

Deno.test("an open socket counts under its route pattern, and its frames and close too", async () => {
  await using test = await testApp();
  const groups = (await scrape(test.app)).get("channels_groups")!; // the framework's own
  const comm = new Communicator(test.app, "/ws/echo/42/");
  assert((await comm.connect()).accepted);
  let samples = await scrape(test.app);
  const route = '{route="/ws/echo/:id/"}';
  assertEquals(samples.get(`channels_connections_open${route}`), 1);
  assertEquals(samples.get(`channels_handshakes_accepted_total${route}`), 1);
  assert(![...samples.keys()].some((key) => key.includes("/ws/echo/42/")), "a path as a label");
  comm.send("héllo"); // 6 bytes in UTF-8
  assertEquals(await comm.receive(), "héllo");
  samples = await scrape(test.app);
  assertEquals(samples.get(`channels_frames_received_total${route}`), 1);
  assertEquals(samples.get(`channels_received_bytes_total${route}`), 6);
  assertEquals(samples.get(`channels_frames_sent_total${route}`), 1);
  assertEquals(samples.get(`channels_sent_bytes_total${route}`), 6);
  assertEquals(samples.get("channels_group_sends_total"), 1);
  assertEquals(samples.get("channels_deliveries_total"), 1);
  assertEquals(samples.get("channels_groups"), groups + 1);
  await comm.disconnect(1000);
  samples = await scrape(test.app);
  assertEquals(samples.get(`channels_connections_open${route}`), 0);
  assertEquals(samples.get('channels_closes_total{route="/ws/echo/:id/",code="1000"}'), 1);
  assertEquals(samples.get("channels_groups"), groups);
});

Deno.test("a socket the server closed counts under the server's code, whatever the client did", async () => {
  await using server = await startTestServer({ metricsToken: TOKEN, maxMessageBytes: 1024 });
  const client = await RawWebSocket.open(server.wsUrl("/ws/chat/lobby/"));
  await client.send(JSON.stringify({ message: "x".repeat(2000) })); // over the 1 KiB bound
  assertEquals((await client.readUntilClose()).closeCode, CloseCode.MESSAGE_TOO_BIG);
  client.close(); // no close frame back: the connection just drops
  const closes = async () =>
    [...(await scrape(server.app)).entries()].filter(([key]) =>
      key.startsWith("channels_closes_total{")
    );
  const deadline = Date.now() + 10_000;
  while ((await closes()).length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assertEquals(await closes(), [['channels_closes_total{route="/ws/chat/:room/",code="1009"}', 1]]);
});

Deno.test("refused handshakes are counted by reason", async () => {
  await using test = await testApp();
  const crossSite = new Communicator(test.app, "/ws/echo/1/", {
    headers: { origin: "https://evil.example" },
  });
  assertEquals((await crossSite.connect()).status, 403);
  const anonymous = new Communicator(test.app, "/ws/private/");
  assertEquals((await anonymous.connect()).status, 403);
  const samples = await scrape(test.app);
  assertEquals(
    samples.get('channels_handshakes_refused_total{route="/ws/echo/:id/",reason="origin"}'),
    1,
  );
  assertEquals(
    samples.get(
      'channels_handshakes_refused_total{route="/ws/private/",reason="login_required"}',
    ),
    1,
  );
  assertEquals(
    samples.get('channels_handshakes_refused_total{route="/ws/echo/:id/",reason="consumer"}'),
    0,
  );
  assertEquals(samples.get('channels_connections_open{route="/ws/echo/:id/"}'), 0);
});

Deno.test("the CPU time is read with the permissions `deno task start` runs with", async () => {
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks as Record<string, string>;
  const flags = tasks.start.split(" ").filter((word) => word.startsWith("--"));
  const probe = new URL("../../server/_process_probes.ts", import.meta.url).href;
  // `deno run`, not `deno eval`, which allows everything.
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { cpuSeconds } from "${probe}"; console.log(JSON.stringify(cpuSeconds()));`,
    );
    const { stdout, success } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, script],
      stderr: "inherit",
    }).output();
    assert(success);
    const seconds = JSON.parse(new TextDecoder().decode(stdout));
    assert(typeof seconds === "number" && seconds > 0, `read ${seconds}`);
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("history writes, memory, CPU and the event loop's lag are reported", async () => {
  await using test = await testApp();
  await test.services.streams.publish("chat.lobby", { type: "chat.message", message: "hi" });
  await test.services.streams.close(); // writes the batch now
  const samples = await scrape(test.app);
  assertEquals(samples.get("channels_history_write_seconds_count"), 1);
  assertEquals(samples.get('channels_history_write_seconds_bucket{le="+Inf"}'), 1);
  assert(samples.get("process_resident_memory_bytes")! > 1024 * 1024);
  assert(samples.get("process_cpu_seconds_total")! > 0);
  assert(samples.has("channels_event_loop_lag_seconds"));
  assert(samples.has("channels_event_loop_lag_max_seconds"));
});

const redis = await redisAvailability({ privateServer: true });

Deno.test({
  name: "a Redis outage shows as down while it lasts, then as one reconnect and its seconds",
  ignore: !redis.available,
  fn: async () => {
    await using server = await startRedisServer();
    const client = await connectRedis(server.url, { name: "presence", connectTimeoutMs: 1000 });
    const layer = new InMemoryLayer();
    const metrics = new ServerMetrics({ layer });
    const health = (samples: Samples) => ({
      up: samples.get('channels_redis_up{connection="presence"}'),
      reconnects: samples.get('channels_redis_reconnects_total{connection="presence"}'),
      down: samples.get('channels_redis_down_seconds_total{connection="presence"}')!,
    });
    try {
      assertEquals(health(parse(metrics.render())), { up: 1, reconnects: 0, down: 0 });
      await server.stop();
      await client.ping().catch(() => {}); // fails: the connection notices the outage
      while (redisConnectionStatus(client).state === "ready") await tick();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const during = health(parse(metrics.render()));
      assertEquals([during.up, during.reconnects], [0, 0]);
      assert(during.down >= 0.2, `down ${during.down} s while Redis is away`);
      await server.restart();
      while (redisConnectionStatus(client).state !== "ready") await tick();
      const after = health(parse(metrics.render()));
      assertEquals([after.up, after.reconnects], [1, 1]);
      assert(after.down >= during.down, "the outage's seconds are kept once it is over");
    } finally {
      metrics.close();
      await closeRedis(client);
      await layer.close();
    }
    // A closed connection is no longer reported.
    assert(!metrics.render().includes('connection="presence"'));
  },
});

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

Deno.test("the largest groups leave out sessions', anonymous browsers' and token users' groups, however many there are", async () => {
  const layer = new InMemoryLayer();
  try {
    const metrics = new ServerMetrics({ layer });
    // 6 rooms of 2, and 30 signed-in browsers with 3 tabs each (a group of 3 per session).
    for (let room = 0; room < 6; room++) {
      for (let n = 0; n < 2; n++) {
        await layer.groupAdd(
          `chat.room${room}`,
          layer.newChannel(() => true),
        );
      }
    }
    for (let session = 0; session < 30; session++) {
      const group = await sessionGroup(`session-id-${session}`);
      for (let tab = 0; tab < 3; tab++) await layer.groupAdd(group, layer.newChannel(() => true));
    }
    // And 30 users with 3 scripts each on access tokens (a token group of 3 per user).
    for (let user = 0; user < 30; user++) {
      const group = await tokenGroup(`user${user}`);
      for (let script = 0; script < 3; script++) {
        await layer.groupAdd(group, layer.newChannel(() => true));
      }
    }
    // And 30 anonymous browsers with 3 chat tabs each (a browser group of 3 per browser).
    for (let browser = 0; browser < 30; browser++) {
      const group = await browserGroup(`csrf-secret-${browser}`);
      for (let tab = 0; tab < 3; tab++) await layer.groupAdd(group, layer.newChannel(() => true));
    }
    const largest = metrics.snapshot().largestGroups;
    assertEquals(
      largest.map((size) => size.group).sort(),
      [0, 1, 2, 3, 4, 5].map((n) => `chat.room${n}`),
    );
  } finally {
    await layer.close();
  }
});

Deno.test("group sends are counted where a member took them, not in every process that heard them", async () => {
  const layer = new InMemoryLayer();
  await layer.groupSend("nobody-here", { type: "t" });
  assertEquals(layer.stats().groupSends, 0);
  const channel = layer.newChannel(() => true);
  await layer.groupAdd("someone-here", channel);
  await layer.groupSend("someone-here", { type: "t" });
  assertEquals(layer.stats().groupSends, 1);
  await layer.close();
});

Deno.test("a handshake whose connect met an unavailable backend is refused with 503 and counted as unavailable", async () => {
  using _log = new CapturedLog();
  await using test = await testApp();
  const away = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6390"), {
    code: "ECONNREFUSED",
  });
  const app = createApp({
    routes: [socket("/ws/away/", () => ({ connect: () => Promise.reject(away) }))],
    services: test.services,
    upgrade: testUpgrade,
  });
  const comm = new Communicator(app, "/ws/away/");
  const error = await assertRejects(() => comm.connect());
  assertMatch(String(error), /refused with 503/);
  const samples = await scrape(app);
  assertEquals(
    samples.get('channels_handshakes_refused_total{route="/ws/away/",reason="unavailable"}'),
    1,
  );
  assertEquals(
    samples.get('channels_handshakes_refused_total{route="/ws/away/",reason="consumer_error"}'),
    0,
  );
  await app.close();
});
