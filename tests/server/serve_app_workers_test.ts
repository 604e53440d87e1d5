/**
 * `serveApp` in an app of one's own: where it listens is said, and so is `WORKERS` set where no
 * Worker pool acts on it.
 */
import { assertEquals } from "@std/assert";
import { type Config, createApp, loadConfig, log, page, serveApp } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const hello = page("GET", "/", () => new Response("hello"));

async function warningsServing(workers: number, reusePort: boolean): Promise<string[]> {
  await using services = await createTestServices({ workers });
  using captured = new CapturedLog();
  log.setLevel("info");
  const app = createApp({ routes: [hello], services });
  const server = await serveApp(app, { hostname: "127.0.0.1", port: 0, reusePort });
  try {
    assertEquals(await (await fetch(server.url)).text(), "hello");
  } finally {
    await server.shutdown();
    log.setLevel("silent");
  }
  return captured.lines.filter((line) => line.includes("WORKERS is"));
}

Deno.test("an app that serves alone with WORKERS set is told where Workers start", async () => {
  const [warning, ...more] = await warningsServing(4, false);
  assertEquals(more, []);
  assertEquals(
    warning?.includes("WORKERS is 4, but this app serves one process") &&
      warning.includes("startWorkers"),
    true,
    warning,
  );
});

Deno.test("one process, or a Worker of a pool, serves without that warning", async () => {
  assertEquals(await warningsServing(1, false), []);
  assertEquals(await warningsServing(2, true), []);
});

Deno.test("an app of one's own says where it listens once it does, as Daphne does", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("info");
  const server = await serveApp(createApp({ routes: [hello], services }), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const said = captured.lines.filter((line) => line.includes(" Listening at "));
    assertEquals(said.map((line) => line.replace(/^.* INFO /, "")), [`Listening at ${server.url}`]);
  } finally {
    await server.shutdown();
    log.setLevel("silent");
  }
});

Deno.test("a server that answers page requests for any host name is told so at start, once", async () => {
  const hostWarnings = async (overrides: Partial<Config>, reusePort = false) => {
    await using services = await createTestServices(overrides);
    using captured = new CapturedLog();
    log.setLevel("info");
    const app = createApp({ routes: [hello], services });
    const server = await serveApp(app, { hostname: "127.0.0.1", port: 0, reusePort });
    await server.shutdown();
    log.setLevel("silent");
    return captured.lines.filter((line) => line.includes("page requests for any host name"));
  };
  // What `HOST=0.0.0.0` makes of ALLOWED_HOSTS, set or not: no list of hosts for pages.
  const anyHost = { host: "0.0.0.0", servedHosts: [], allowedHosts: ["chat.example.com"] };
  const [warning, ...more] = await hostWarnings(anyHost);
  assertEquals(more, []);
  assertEquals(
    ["HOST is 0.0.0.0", "DNS rebinding", "TRUST_PROXY=true"].filter((part) =>
      !warning?.includes(part)
    ),
    [],
    warning,
  );
  const loopback = loadConfig([], { HOST: "127.0.0.1" });
  assertEquals(
    await hostWarnings({ servedHosts: loopback.servedHosts }),
    [],
    "loopback names only",
  );
  assertEquals(
    await hostWarnings({ ...anyHost, trustProxy: true }),
    [],
    "the proxy routes by host",
  );
  assertEquals(await hostWarnings(anyHost, true), [], "a Worker: its pool says it once");
});
