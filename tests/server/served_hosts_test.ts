/**
 * The hosts the site answers to (Django's `ALLOWED_HOSTS`): a server only this machine reaches
 * answers only to loopback names by default, so a web page whose own name was made to resolve to
 * 127.0.0.1 (DNS rebinding) cannot read its pages, post its forms or open its sockets.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { loadConfig } from "../../server/config.ts";
import { createTestApp } from "../_support/test_app.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { startServerProcess } from "../scale/_process.ts";

const LOOPBACK = [".localhost", "127.0.0.1", "[::1]"];

Deno.test("a loopback server reached directly answers to loopback names, its own HOST and ALLOWED_HOSTS; any other to any host", () => {
  assertEquals(loadConfig([], {}).servedHosts, LOOPBACK);
  assertEquals(loadConfig([], { HOST: "::1" }).servedHosts, LOOPBACK);
  assertEquals(loadConfig([], { HOST: "localhost" }).servedHosts, [...LOOPBACK, "localhost"]);
  // Its own address, as the start line prints it, whichever loopback address it is.
  assertEquals(loadConfig([], { HOST: "127.0.0.2" }).servedHosts, [...LOOPBACK, "127.0.0.2"]);
  // A name a local proxy passes on (for its pages' Origins too).
  assertEquals(
    loadConfig([], { ALLOWED_HOSTS: "chat.example.com" }).servedHosts,
    [...LOOPBACK, "chat.example.com"],
  );
  // Reached from elsewhere (a balancer's health check by address), or through a proxy that
  // names the site: as before, any host, and ALLOWED_HOSTS names the Origins only.
  assertEquals(loadConfig([], { HOST: "0.0.0.0" }).servedHosts, []);
  assertEquals(loadConfig([], { TRUST_PROXY: "true" }).servedHosts, []);
  const deployed = loadConfig([], { HOST: "0.0.0.0", ALLOWED_HOSTS: "chat.example.com" });
  assertEquals([deployed.allowedHosts, deployed.servedHosts], [["chat.example.com"], []]);
});

Deno.test("a host's final dot names the same host, in the request and in ALLOWED_HOSTS", async () => {
  await using app = await createTestApp({ servedHosts: [...LOOPBACK, "chat.example.com."] });
  for (const host of ["chat.example.com", "chat.example.com.", "chat.example.com.:8000"]) {
    const response = await app.handle(new Request(`http://${host}/chat/`, { headers: { host } }));
    await response.body?.cancel();
    assertEquals(response.status, 200, host);
  }
});

Deno.test("a request for a host the site does not answer to gets 400 and a log line naming it", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp({ servedHosts: LOOPBACK, logLevel: "info" });
  const get = (host: string) =>
    app.handle(new Request(`http://${host}/chat/`, { headers: { host } }));
  const served = [
    "127.0.0.1:8000",
    "localhost:8000",
    "localhost.:8000",
    "room.localhost",
    "[::1]:8000",
  ];
  for (const host of served) {
    const response = await get(host);
    await response.body?.cancel();
    assertEquals(response.status, 200, host);
  }
  const refused = await get("rebind.attacker.test:8000");
  assertEquals(refused.status, 400);
  assertMatch(await refused.text(), /does not answer to the host/);
  await captured.waitFor(
    /^HTTP GET \/chat\/ 400 .*\(the Host "rebind\.attacker\.test:8000" is not one this site answers to \(ALLOWED_HOSTS\)\)$/,
  );
});

Deno.test("deno task start refuses a rebound page its reads, its forms and its sockets", async () => {
  await using server = await startServerProcess();
  const { port } = new URL(server.url);
  const evil = `rebind.attacker.test:${port}`;
  const headers = { host: evil, origin: `http://${evil}` };
  // A raw request: fetch would not send a Host of our choosing.
  const ask = async (request: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    await conn.write(new TextEncoder().encode(request));
    return new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  };
  const head = (method: string, path: string, extra = "") =>
    `${method} ${path} HTTP/1.1\r\nHost: ${headers.host}\r\nOrigin: ${headers.origin}\r\n` +
    `${extra}Connection: close\r\n\r\n`;
  assertMatch(await ask(head("GET", "/")), /^HTTP\/1\.1 400 /);
  const form = "username=rebinder&password1=correct-horse-battery&password2=correct-horse-battery";
  const posted = head(
    "POST",
    "/sign_up/",
    `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n`,
  ) + form;
  assertMatch(await ask(posted), /^HTTP\/1\.1 400 /);
  const upgrade = head(
    "GET",
    "/ws/chat/lobby/",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
  );
  assertMatch(await ask(upgrade), /^HTTP\/1\.1 400 /);
  // The same server, asked by its own name, answers.
  const own = await fetch(`${server.url}/chat/`);
  await own.body?.cancel();
  assertEquals(own.status, 200);
  assert(server.output().includes(`the Host "${evil}" is not one this site answers to`));
});

Deno.test("a server on another loopback address answers to the URL it prints", async () => {
  await using server = await startServerProcess({ HOST: "127.0.0.2" });
  assert(server.url.startsWith("http://127.0.0.2:"), server.url);
  const page = await fetch(`${server.url}/chat/`);
  await page.body?.cancel();
  assertEquals(page.status, 200);
});
