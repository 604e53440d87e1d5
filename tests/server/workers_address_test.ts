/**
 * `--workers` binds with `reusePort`, which the kernel grants beside any other server that did
 * too: a second instance on the same port would split the clients with the first without a
 * word. So the pool checks its addresses before a Worker starts, and refuses as one process does.
 */
import { assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { loadConfig, startWorkers } from "../../mod.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const WORKER = new URL("../../routes/_worker.ts", import.meta.url);

Deno.test("--workers refuses a port another --workers server holds, naming HOST and PORT", async () => {
  // What another `--workers` instance holds: a listener with `reusePort`.
  using other = Deno.listen({ hostname: "127.0.0.1", port: 0, reusePort: true });
  const port = (other.addr as Deno.NetAddr).port;
  const config = loadConfig(["--workers", "2"], { HOST: "127.0.0.1", PORT: String(port) });
  await assertRejects(
    () => startWorkers(config, WORKER),
    Error,
    `The address of HOST and PORT: 127.0.0.1:${port} is in use by another program`,
  );
});

Deno.test("--workers refuses a METRICS_ADDRESS another program holds, as one process does", async () => {
  using other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (other.addr as Deno.NetAddr).port;
  const config = loadConfig(["--workers", "2"], {
    HOST: "127.0.0.1",
    PORT: "0",
    METRICS_ADDRESS: `127.0.0.1:${port}`,
  });
  await assertRejects(
    () => startWorkers(config, WORKER),
    Error,
    `The address of METRICS_ADDRESS: 127.0.0.1:${port} is in use by another program`,
  );
});

Deno.test("a HOST that cannot be listened on is named", async () => {
  const config = loadConfig(["--workers", "2"], { HOST: "no-such-host.invalid", PORT: "1" });
  await assertRejects(
    () => startWorkers(config, WORKER),
    Error,
    "The address of HOST and PORT: no-such-host.invalid:1 cannot be listened on",
  );
});

Deno.test({
  name: "--workers with METRICS_ADDRESS port 0 serves the metrics of one Worker on one port",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const config = loadConfig(["--workers", "2"], {
      HOST: "127.0.0.1",
      PORT: "0",
      METRICS_ADDRESS: "127.0.0.1:0",
      DATA_DIR: await Deno.makeTempDir(),
      LOG_LEVEL: "error",
    });
    const pool = await startWorkers(config, WORKER);
    try {
      assertEquals(pool.metricsUrl?.endsWith(":0/metrics"), false, "no port was chosen");
      const response = await fetch(pool.metricsUrl!);
      assertEquals(response.status, 200);
      await response.body?.cancel();
    } finally {
      await pool.shutdown();
    }
  },
});

Deno.test("METRICS_ADDRESS on the server's own HOST and PORT is refused by name", () => {
  assertThrows(
    () => loadConfig([], { PORT: "9000", METRICS_ADDRESS: "127.0.0.1:9000" }),
    Error,
    "METRICS_ADDRESS must not be the server's own HOST and PORT (127.0.0.1:9000)",
  );
  assertThrows(
    () => loadConfig([], { HOST: "0.0.0.0", PORT: "9000", METRICS_ADDRESS: "127.0.0.1:9000" }),
    Error,
    "METRICS_ADDRESS must not",
  );
  // One host however spelt: the metrics listener would take the port, and the server's own
  // start would blame "another program".
  for (
    const [host, metrics] of [
      ["localhost", "127.0.0.1:9000"],
      ["127.0.0.1", "localhost:9000"],
      ["[::1]", "[::1]:9000"],
      ["::1", "[::1]:9000"],
      ["localhost", "[::1]:9000"],
      ["[::]", "127.0.0.1:9000"],
    ]
  ) {
    assertThrows(
      () => loadConfig([], { HOST: host, PORT: "9000", METRICS_ADDRESS: metrics }),
      Error,
      "METRICS_ADDRESS must not",
      `HOST=${host} METRICS_ADDRESS=${metrics}`,
    );
  }
  loadConfig([], { PORT: "9000", METRICS_ADDRESS: "127.0.0.1:9100" }); // another port: fine
  // Two loopback addresses that are not the same: each its own listener.
  loadConfig([], { HOST: "127.0.0.1", PORT: "9000", METRICS_ADDRESS: "[::1]:9000" });
  loadConfig([], { HOST: "localhost", PORT: "9000", METRICS_ADDRESS: "127.0.0.2:9000" });
});

for (const fault of ["hang", "throw"]) {
  Deno.test(`a Worker that ${fault}s while the pool drains is named, and the stop is not a clean one`, async () => {
    using captured = new CapturedLog();
    const config = loadConfig(["--workers", "2"], { HOST: "127.0.0.1", PORT: "0" });
    const module = new URL(`../fixtures/workers/hangs_on_stop.ts?fault=${fault}`, import.meta.url);
    const pool = await startWorkers(config, module);
    await assertRejects(
      () => pool.drain(0),
      Error,
      "worker-2 did not stop within 1.5 s; ended with its sockets open",
    );
    if (fault === "throw") {
      await captured.waitFor(
        /Worker worker-2 failed while stopping: .*the app's bug while draining/,
      );
    }
  });
}

const FIXTURE = (fault: string) =>
  new URL(`../fixtures/workers/hangs_on_stop.ts?fault=${fault}`, import.meta.url);

async function poolConfig(port: number, env: Record<string, string> = {}) {
  return loadConfig(["--workers", "2"], {
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: await Deno.makeTempDir({ prefix: "channels-pool-" }),
    LOG_LEVEL: "error",
    ...env,
  });
}

Deno.test("two --workers servers started at one moment on one port: one serves, the other is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  // Each passes the check alone: the hold on the port is what tells them apart.
  const results = await Promise.allSettled([
    startWorkers(await poolConfig(port), FIXTURE("none")),
    startWorkers(await poolConfig(port), FIXTURE("none")),
  ]);
  const served = results.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
  const refused = results.flatMap((result) => result.status === "rejected" ? [result.reason] : []);
  assertEquals([served.length, refused.length], [1, 1]);
  assertMatch(
    (refused[0] as Error).message,
    new RegExp(`127\\.0\\.0\\.1:${port} is in use by another --workers server( \\(pid \\d+\\))?$`),
  );
  await served[0].shutdown();
  // Once that pool stopped, the port is free for the next.
  const next = await startWorkers(await poolConfig(port), FIXTURE("none"));
  await next.shutdown();
});

Deno.test("a Worker that never says it listens fails the start, naming it, and the others are stopped", async () => {
  using captured = new CapturedLog();
  const config = loadConfig(["--workers", "2"], {
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: await Deno.makeTempDir({ prefix: "channels-pool-" }),
  });
  await assertRejects(
    // Long enough for worker-1 to start on a busy machine.
    () => startWorkers(config, FIXTURE("start"), { startTimeoutMs: 5000 }),
    Error,
    "worker-2 did not say it listens within 5 s of the start",
  );
  assertEquals(captured.lines.filter((line) => line.includes("failed")), []);
});

Deno.test("a signal while the Workers start stops the start with its reason", async () => {
  const config = loadConfig(["--workers", "2"], {
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: await Deno.makeTempDir({ prefix: "channels-pool-" }),
  });
  const starting = new AbortController();
  const start = startWorkers(config, FIXTURE("start"), { signal: starting.signal });
  starting.abort(new Error("SIGTERM before the server served: stopped"));
  await assertRejects(() => start, Error, "SIGTERM before the server served");
});

Deno.test({
  name: "two --workers pools on one port but two addresses both start: they share no clients",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    // Each pool answers a name only it allows (a loopback server refuses other hosts with 400):
    // a connection the other pool took would read 400.
    const pool = async (host: string, name: string) =>
      startWorkers(await poolConfig(port, { HOST: host, ALLOWED_HOSTS: name }), WORKER);
    const [a, b] = [await pool("127.0.0.1", "a.test"), await pool("127.0.0.2", "b.test")];
    try {
      for (let i = 0; i < 12; i++) {
        assertEquals(await statusOf("127.0.0.1", port, "a.test"), 200, `request ${i} to A`);
        assertEquals(await statusOf("127.0.0.2", port, "b.test"), 200, `request ${i} to B`);
      }
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  },
});

// The status of a static file's GET to `address:port`, on a connection of its own, for the
// Host `name`.
async function statusOf(address: string, port: number, name: string): Promise<number> {
  using conn = await Deno.connect({ hostname: address, port });
  const request =
    `GET /static/site.css HTTP/1.1\r\nHost: ${name}:${port}\r\nConnection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(request));
  const head = new Uint8Array(64);
  const read = await conn.read(head);
  const line = new TextDecoder().decode(head.subarray(0, read ?? 0));
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(line)?.[1] ?? 0);
}
