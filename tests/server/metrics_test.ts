/**
 * `GET /metrics`: the Prometheus text format, counts that move with traffic (labelled by route
 * pattern, never by path), and never public by accident (404 without a token or an address,
 * 401 with a missing or wrong token, a separate address that serves only /metrics).
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  type Consumer,
  createApp,
  Histogram,
  MetricsRegistry,
  page,
  serveApp,
  socket,
} from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import type { Config } from "../../mod.ts";
import { InMemoryLayer, log, RouteMeter, serveMetrics, ServerMetrics } from "../../mod.ts";
import { utf8Length } from "../../server/server_metrics.ts";
import { sessionGroup } from "../../auth/sessions.ts";
import { tokenGroup } from "../../auth/token_revocations.ts";
import { FrameBatch } from "../../server/_frame_batch.ts";
import { closeRedis, connectRedis, redisConnectionStatus } from "../../storage/redis_connection.ts";
import { redisAvailability, startRedisServer } from "../_support/redis.ts";
import { startTestServer } from "../_support/server.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const TOKEN = "metrics-token-for-tests";

const echo: Consumer = (conn) => ({
  async connect() {
    await conn.groupAdd("echoes");
  },
  async receive(text) {
    await conn.groupSend("echoes", { type: "echo", text });
  },
  events: { echo: (event) => conn.send(String(event.text)) },
});

async function testApp(overrides: Partial<Config> = {}) {
  const services = await createTestServices({ metricsToken: TOKEN, ...overrides });
  const app = createApp({
    routes: [
      page("GET", "/", () => new Response("home")),
      socket("/ws/echo/:id/", echo),
      socket("/ws/private/", echo, { loginRequired: true }),
    ],
    services,
    upgrade: testUpgrade,
  });
  return {
    app,
    services,
    async [Symbol.asyncDispose]() {
      await app.close();
      await services[Symbol.asyncDispose]();
    },
  };
}

type Samples = Map<string, number>;

/** Parses the text format strictly: every line is a HELP, a TYPE or a sample; keyed by series. */
function parse(text: string): Samples {
  const samples: Samples = new Map();
  const types = new Map<string, string>();
  assert(text.endsWith("\n"), "the text ends with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      assertMatch(line, /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S.*$/);
    } else if (line.startsWith("# TYPE ")) {
      const match = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
      if (match === null) throw new Error(`bad TYPE line: ${line}`);
      types.set(match[1], match[2]);
    } else {
      const match =
        /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$/
          .exec(line);
      if (match === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
      const family = match[1].replace(/_(bucket|sum|count)$/, "");
      assert(types.has(match[1]) || types.get(family) === "histogram", `no TYPE for ${match[1]}`);
      const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
      assert(!Number.isNaN(value), `bad value in ${line}`);
      samples.set(match[1] + (match[2] ?? ""), value);
    }
  }
  return samples;
}

async function scrape(
  app: { handle(request: Request): Promise<Response> },
  token = TOKEN,
): Promise<Samples> {
  const response = await app.handle(
    new Request("http://localhost/metrics", { headers: { authorization: `Bearer ${token}` } }),
  );
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parse(await response.text());
}

Deno.test("the registry renders HELP, TYPE and samples, histograms cumulatively", () => {
  const registry = new MetricsRegistry();
  const frames = registry.counter("t_frames_total", "Frames.\nSecond line", ["route"]);
  frames.labels('/ws/"odd"\\path/').value += 3;
  registry.gauge("t_open", "Open.").labels().value = 2;
  const latency = new Histogram([0.1, 1]);
  latency.observe(0.05);
  latency.observe(0.5);
  latency.observe(7);
  registry.histogram("t_write_seconds", "Writes.").attach(latency);
  const text = registry.render();
  assertEquals(
    text,
    [
      "# HELP t_frames_total Frames.\\nSecond line",
      "# TYPE t_frames_total counter",
      't_frames_total{route="/ws/\\"odd\\"\\\\path/"} 3',
      "# HELP t_open Open.",
      "# TYPE t_open gauge",
      "t_open 2",
      "# HELP t_write_seconds Writes.",
      "# TYPE t_write_seconds histogram",
      't_write_seconds_bucket{le="0.1"} 1',
      't_write_seconds_bucket{le="1"} 2',
      't_write_seconds_bucket{le="+Inf"} 3',
      "t_write_seconds_sum 7.55",
      "t_write_seconds_count 3",
      "",
    ].join("\n"),
  );
  parse(text);
});

Deno.test("the registry refuses bad names and unbounded label values", () => {
  const registry = new MetricsRegistry();
  assertThrows(() => registry.counter("t_frames", "No _total."), TypeError, "_total");
  assertThrows(() => registry.gauge("t-bad", "Dash."), TypeError, "Invalid metric name");
  const gauge = registry.gauge("t_by_path", "Per path.", ["path"]);
  assertThrows(() => gauge.labels("a", "b"), TypeError, "takes 1 label value");
  assertThrows(
    () => {
      for (let i = 0; i < 5000; i++) gauge.labels(`/room/${i}/`);
    },
    RangeError,
    "small fixed set",
  );
  // A family made with a larger bound takes that many.
  const wide = registry.counter("t_wide_total", "Wide.", ["n"], { maxSeries: 1500 });
  for (let i = 0; i < 1500; i++) wide.labels(String(i)).value++;
  assertThrows(() => wide.labels("1500"), RangeError, "1500 series");
});

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

Deno.test("/metrics does not exist without a token or an address", async () => {
  await using test = await testApp({ metricsToken: "" });
  const response = await test.app.handle(
    new Request("http://localhost/metrics", { headers: { authorization: "Bearer " } }),
  );
  assertEquals(response.status, 404);
  await response.body?.cancel();
});

Deno.test("/metrics without a token is 401, with a wrong one too, saying it is invalid", async () => {
  await using test = await testApp();
  const anonymous = await test.app.handle(new Request("http://localhost/metrics"));
  assertEquals(anonymous.status, 401);
  assertEquals(anonymous.headers.get("www-authenticate"), 'Bearer realm="metrics"');
  await anonymous.body?.cancel();
  for (const wrong of ["guess", `${TOKEN}x`, TOKEN.slice(1)]) {
    const response = await test.app.handle(
      new Request("http://localhost/metrics", { headers: { authorization: `Bearer ${wrong}` } }),
    );
    assertEquals(response.status, 401);
    assertEquals(
      response.headers.get("www-authenticate"),
      'Bearer realm="metrics", error="invalid_token"',
    );
    assertEquals((await response.text()).includes("channels_"), false);
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

Deno.test("a separate metrics address serves /metrics alone, without a token", async () => {
  const services = await createTestServices({
    metricsToken: "",
    metricsAddress: { hostname: "127.0.0.1", port: 0 },
  });
  const app = createApp({
    routes: [page("GET", "/", () => new Response("home"))],
    services,
  });
  const server = await serveApp(app, { hostname: "127.0.0.1", port: 0 });
  try {
    const url = server.metricsUrl;
    if (url === null) throw new Error("no metrics address");
    const metrics = await fetch(url);
    assertEquals(metrics.status, 200);
    parse(await metrics.text());
    const other = await fetch(url.replace("/metrics", "/"));
    assertEquals(other.status, 404);
    await other.body?.cancel();
    const onAppPort = await fetch(`${server.url}/metrics`);
    assertEquals(onAppPort.status, 404, "the app's own port has no /metrics without a token");
    await onAppPort.body?.cancel();
  } finally {
    await server.shutdown();
    await services[Symbol.asyncDispose]();
  }
});

Deno.test("an address in use names the setting it belongs to", async () => {
  await using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  for (
    const [overrides, serveOn, setting] of [
      [{}, port, "HOST and PORT: 127.0.0.1:" + port],
      [
        { metricsAddress: { hostname: "127.0.0.1", port } },
        0,
        "METRICS_ADDRESS: 127.0.0.1:" + port,
      ],
    ] as const
  ) {
    await using services = await createTestServices({ metricsToken: "", ...overrides });
    const app = createApp({ routes: [page("GET", "/", () => new Response("home"))], services });
    await assertRejects(
      () => serveApp(app, { hostname: "127.0.0.1", port: serveOn }),
      Error,
      `The address of ${setting} is in use by another program`,
    );
    await app.close();
  }
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

Deno.test("a batched frame counts once, with the UTF-8 bytes it carried", () => {
  const meter = new RouteMeter("/ws/x/");
  const sent: string[] = [];
  const batch = new FrameBatch(meter);
  batch.socket = { readyState: 1, send: (text: string) => void sent.push(text) } as never;
  const shared = '{"text":"héllo"}'; // one group event's JSON, as every member gets it
  batch.add(shared);
  batch.add('{"n":1}');
  batch.add(shared);
  batch.flush();
  assertEquals(sent.length, 1);
  assertEquals(meter.framesOut, 1);
  assertEquals(meter.bytesOut, new TextEncoder().encode(sent[0]).byteLength);
  batch.add(shared);
  batch.discard(); // the socket closed: nothing sent, nothing counted
  batch.flush();
  assertEquals([meter.framesOut, sent.length], [1, 1]);
  assertEquals(utf8Length("a€😀"), 1 + 3 + 4);
});

Deno.test("the largest groups leave out sessions' and token users' groups, however many are signed in", async () => {
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
    const largest = metrics.snapshot().largestGroups;
    assertEquals(
      largest.map((size) => size.group).sort(),
      [0, 1, 2, 3, 4, 5].map((n) => `chat.room${n}`),
    );
  } finally {
    await layer.close();
  }
});

Deno.test("with METRICS_TOKEN, an app's own GET /metrics page is named at start with the setting", async () => {
  await using services = await createTestServices({ metricsToken: TOKEN });
  const mine = page("GET", "/metrics", () => new Response("the app's own"));
  const error = assertThrows(() => createApp({ routes: [mine], services }), TypeError);
  assertStringIncludes(error.message, "METRICS_TOKEN makes GET /metrics the metrics route");
  // Without the token the path is the app's.
  await using free = await createTestServices({ metricsToken: "" });
  const app = createApp({ routes: [mine], services: free });
  const answer = await app.handle(new Request("http://localhost/metrics"));
  assertEquals(await answer.text(), "the app's own");
  await app.close();
});

Deno.test("every series of a Worker carries its name, so a scrape of another Worker never moves it", () => {
  const registry = new MetricsRegistry();
  registry.counter("t_frames_total", "Frames.", ["route"]).labels("/ws/a/").value = 3;
  registry.gauge("t_open", "Open.").labels().value = 2;
  const latency = new Histogram([1]);
  latency.observe(0.5);
  registry.histogram("t_write_seconds", "Writes.").attach(latency);
  registry.labelAll("worker", "worker-2");
  const samples = parse(registry.render());
  assertEquals([...samples.keys()], [
    't_frames_total{worker="worker-2",route="/ws/a/"}',
    't_open{worker="worker-2"}',
    't_write_seconds_bucket{worker="worker-2",le="1"}',
    't_write_seconds_bucket{worker="worker-2",le="+Inf"}',
    't_write_seconds_sum{worker="worker-2"}',
    't_write_seconds_count{worker="worker-2"}',
  ]);
});

Deno.test("a server started as a Worker labels its metrics with the Worker's name", async () => {
  await using test = await testApp();
  const server = await serveApp(test.app, { hostname: "127.0.0.1", port: 0, servedBy: "worker-3" });
  try {
    const samples = await scrape(test.app);
    const names = [...samples.keys()];
    assert(names.length > 0);
    assert(names.every((name) => name.includes('{worker="worker-3"')), names.join("\n"));
  } finally {
    await server.shutdown();
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

Deno.test("each request to the metrics address gets one access line, a refusal's with its reason", async () => {
  using captured = new CapturedLog();
  log.setLevel("info");
  const layer = new InMemoryLayer();
  const listener = await serveMetrics(new ServerMetrics({ layer }), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const base = `http://127.0.0.1:${listener.addr.port}`;
    for (const [method, path] of [["GET", "/metrics"], ["GET", "/"], ["POST", "/metrics"]]) {
      await (await fetch(base + path, { method })).body?.cancel();
    }
    // By hand: a Host that is no host, and an empty one (allowed, RFC 9112 section 3.2).
    const sent = async (host: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      await conn.write(
        new TextEncoder().encode(
          `GET /metrics HTTP/1.1\r\nHost:${host}\r\nConnection: close\r\n\r\n`,
        ),
      );
      return new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    };
    assertMatch(await sent(" a b"), /^HTTP\/1\.1 400 /);
    assertMatch(await sent(""), /^HTTP\/1\.1 200 /);
    const line = (method: string, path: string, status: number, reason = "") =>
      new RegExp(
        `^HTTP ${method} ${path} ${status} \\[\\d+\\.\\d{3}, 127\\.0\\.0\\.1:\\d+\\]${reason}$`,
      );
    await captured.waitFor(line("GET", "/metrics", 200));
    await captured.waitFor(line("GET", "/", 404, String.raw` \(only /metrics is served here\)`));
    await captured.waitFor(
      line(
        "POST",
        "/metrics",
        405,
        String.raw` \(the method is not allowed here: GET, HEAD only\)`,
      ),
    );
    await captured.waitFor(
      line("GET", "/metrics", 400, String.raw` \(the Host header is not a valid host\)`),
    );
    // The empty Host's line names the path alone, not the address Deno put in its place.
    assertEquals(captured.lines.filter((l) => line("GET", "/metrics", 200).test(l)).length, 2);
    assertEquals(captured.lines.length, 5, captured.lines.join("\n"));
  } finally {
    log.setLevel("silent");
    await listener.shutdown();
    await layer.close();
  }
});
