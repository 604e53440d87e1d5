/**
 * Connection caps: one client address, or one signed-in user, holds at most so many open
 * sockets in a process; the next handshake is refused with 429 and a REJECT line saying which
 * cap, the refusal is counted, a closed socket gives its place back, and other clients are
 * not affected.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { type CapLease, ConnectionCaps } from "../../server/connection_caps.ts";
import { DEFAULT_CONFIG, loadConfig } from "../../server/config.ts";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { log } from "../../telemetry/log.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { startTestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
import type { Consumer } from "../../server/consumer.ts";
import type { SocketLike } from "../../server/_socket.ts";
import { releaseWithSocket } from "../../server/_cap_release.ts";

/** A socket to the echo route from `address` (the app trusts X-Forwarded-For), as `token`'s user. */
async function open(app: TestApp, address: string, token?: string) {
  const headers: Record<string, string> = { "x-forwarded-for": address };
  if (token) headers.authorization = `Bearer ${token}`;
  const comm = new Communicator(app, "/ws/echo/", { headers });
  const { status } = await comm.connect();
  return { comm, status };
}

async function tokenFor(app: TestApp, username: string): Promise<string> {
  await app.services.users.create(username, "quiet river stone");
  return (await app.services.tokens.create(username)).token;
}

function granted(lease: CapLease | { refused: string }): CapLease {
  if ("refused" in lease) throw new Error(`Refused: ${lease.refused}`);
  return lease;
}

Deno.test("caps count per address and per user, and give places back once", () => {
  const caps = new ConnectionCaps({ perAddress: 2, perUser: 1 });
  const a = granted(caps.acquire("10.0.0.1", null));
  const b = granted(caps.acquire("10.0.0.1", "ada"));
  assertEquals(caps.acquire("10.0.0.1", null), {
    refused: "Too many connections from this address (the cap is 2)",
    cap: "address",
  });
  assertEquals(caps.acquire("10.0.0.2", "ada"), {
    refused: "Too many connections for this user (the cap is 1)",
    cap: "user",
  });
  assertEquals(caps.stats(), { refusedPerAddress: 1, refusedPerUser: 1, addresses: 1, users: 1 });
  b.release();
  b.release(); // twice is once
  const again = granted(caps.acquire("10.0.0.2", "ada"));
  assertEquals(caps.stats().addresses, 2);
  a.release();
  again.release();
  assertEquals(caps.stats(), { refusedPerAddress: 1, refusedPerUser: 1, addresses: 0, users: 0 });
});

Deno.test("a cap of 0 is no cap", () => {
  const caps = new ConnectionCaps({ perAddress: 0, perUser: 0 });
  for (let i = 0; i < 1000; i++) granted(caps.acquire("10.0.0.1", "ada"));
});

Deno.test("the caps are set from MAX_CONNECTIONS_PER_ADDRESS and MAX_CONNECTIONS_PER_USER", () => {
  assertEquals(DEFAULT_CONFIG.maxConnectionsPerAddress, 256);
  assertEquals(DEFAULT_CONFIG.maxConnectionsPerUser, 64);
  const config = loadConfig([], {
    MAX_CONNECTIONS_PER_ADDRESS: "0",
    MAX_CONNECTIONS_PER_USER: "5",
  });
  assertEquals([config.maxConnectionsPerAddress, config.maxConnectionsPerUser], [0, 5]);
  let message = "";
  try {
    loadConfig([], { MAX_CONNECTIONS_PER_USER: "-1" });
  } catch (error) {
    message = (error as Error).message;
  }
  assert(message.startsWith("MAX_CONNECTIONS_PER_USER must be a whole number"), message);
});

Deno.test("one address over its cap is refused with 429; other addresses are not", async () => {
  const lines: string[] = [];
  log.setSink((line) => lines.push(line));
  try {
    await using app = await createTestApp({ trustProxy: true, maxConnectionsPerAddress: 2 });
    log.setLevel("info"); // REJECT lines are access lines, written at info
    const first = await open(app, "203.0.113.1");
    const second = await open(app, "203.0.113.1");
    assertEquals([first.status, second.status], [101, 101]);
    assertEquals((await open(app, "203.0.113.1")).status, 429);
    const other = await open(app, "203.0.113.2");
    assertEquals(other.status, 101, "another address is unaffected");
    other.comm.send("still served");
    assertEquals(await other.comm.receive(), "You said: still served");
    assertEquals(app.caps.stats().refusedPerAddress, 1);
    assert(
      lines.some((line) =>
        /^WebSocket REJECT \/ws\/echo\/ \[203\.0\.113\.1 via [\d.:]+\] \(Too many connections from this address/
          .test(line)
      ),
      lines.join("\n"),
    );
    await first.comm.disconnect();
    assertEquals(
      (await open(app, "203.0.113.1")).status,
      101,
      "a closed socket gave its place back",
    );
  } finally {
    log.setSink(null);
    log.setLevel("silent");
  }
});

Deno.test("one user over their cap is refused from any address; others are not", async () => {
  await using app = await createTestApp({ trustProxy: true, maxConnectionsPerUser: 2 });
  const ada = await tokenFor(app, "ada");
  const bob = await tokenFor(app, "bob");
  const laptop = await open(app, "198.51.100.1", ada);
  const phone = await open(app, "198.51.100.2", ada);
  assertEquals([laptop.status, phone.status], [101, 101]);
  assertEquals((await open(app, "198.51.100.3", ada)).status, 429);
  assertEquals((await open(app, "198.51.100.1", bob)).status, 101, "another user is unaffected");
  assertEquals(
    (await open(app, "198.51.100.1")).status,
    101,
    "anonymous sockets count per address",
  );
  assertEquals(app.caps.stats().refusedPerUser, 1);
  await phone.comm.disconnect();
  assertEquals((await open(app, "198.51.100.3", ada)).status, 101);
});

Deno.test("the address is the proxy's own X-Forwarded-For entry: ones the client wrote change nothing", async () => {
  await using app = await createTestApp({ trustProxy: true, maxConnectionsPerAddress: 1 });
  // nginx's $proxy_add_x_forwarded_for keeps what the client sent and appends what it saw.
  const held = await open(app, "10.9.2.1, 203.0.113.50");
  assertEquals(held.status, 101);
  assertEquals((await open(app, "10.9.2.2, 203.0.113.50")).status, 429);
  assertEquals((await open(app, "203.0.113.1, 203.0.113.51")).status, 101);
});

Deno.test("a port the proxy added to the forwarded address is no address of its own: the cap holds", async () => {
  await using app = await createTestApp({ trustProxy: true, maxConnectionsPerAddress: 1 });
  // Azure's Application Gateway writes the client's port beside its address.
  assertEquals((await open(app, "203.0.113.60:51234")).status, 101);
  assertEquals((await open(app, "203.0.113.60:51235")).status, 429);
  assertEquals((await open(app, "[2001:DB8::7]:443")).status, 101);
  assertEquals((await open(app, "2001:db8::7")).status, 429, "the same IPv6 address, bare");
  assertEquals((await open(app, "203.0.113.61")).status, 101);
});

Deno.test("a handshake the consumer refuses gives its place back", async () => {
  await using services = await createTestServices({ maxConnectionsPerAddress: 1 });
  const app = createApp({
    routes: [socket("/ws/no/", () => ({ connect: () => false }))],
    services,
    upgrade: testUpgrade,
  });
  for (let i = 0; i < 3; i++) {
    assertEquals((await new Communicator(app, "/ws/no/").connect()).status, 403);
  }
  assertEquals(app.caps.stats(), {
    refusedPerAddress: 0,
    refusedPerUser: 0,
    addresses: 0,
    users: 0,
  });
  await app.close();
});

Deno.test("a consumer that throws while it is made gives its place and its channel back", async () => {
  await using services = await createTestServices({ maxConnectionsPerAddress: 1 });
  const channelsBefore = services.layer.stats().channels;
  const app = createApp({
    routes: [
      socket("/ws/broken/", () => {
        throw new Error("A bug in the consumer's factory");
      }),
      socket("/ws/fine/", () => ({})),
    ],
    services,
    upgrade: testUpgrade,
  });
  for (let i = 0; i < 3; i++) {
    const broken = new Communicator(app, "/ws/broken/");
    await assertRejects(() => broken.connect(), Error, "refused with 500"); // the bug, raised
  }
  assertEquals(app.caps.stats().addresses, 0);
  assertEquals(services.layer.stats().channels, channelsBefore);
  const fine = new Communicator(app, "/ws/fine/");
  assertEquals((await fine.connect()).status, 101);
  await fine.disconnect();
  await app.close();
});

Deno.test("over real sockets, the refused handshake is an HTTP 429", async () => {
  await using server = await startTestServer({ maxConnectionsPerAddress: 1 });
  const held = await TestSocket.open(server.wsUrl("/ws/echo/"));
  assertEquals(await handshakeStatus(server.wsUrl("/ws/echo/")), 429);
  await held.close();
});

Deno.test("a socket whose client never answers the server's close keeps its place until it goes", async () => {
  const caps = new ConnectionCaps({ perAddress: 1, perUser: 0 });
  const { promise: finished, resolve } = Promise.withResolvers<number>();
  const closer: Consumer = (conn) => ({
    receive: () => conn.close(4000, "Bye"),
    disconnect: resolve,
  });
  await using server = await serveConsumer(closer, "/ws/closer/", { caps });
  const silent = await RawWebSocket.open(server.url);
  await silent.send("close me");
  assertEquals((await silent.readUntilClose()).closeCode, 4000); // and it never answers
  await finished; // the server stopped waiting for the answer (CLOSE_TIMEOUT_MS)
  // Deno keeps that socket open, so it still counts: one client cannot pile such sockets up.
  assertEquals(await handshakeStatus(server.url), 429);
  silent.close();
  // The server learns of it from Deno's close event, which the test cannot await: it asks.
  let status = 429;
  for (let attempt = 0; attempt < 100 && status === 429; attempt++) {
    status = await handshakeStatus(server.url);
    if (status === 429) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assertEquals(status, 101, "the place was not given back once the socket went");
});

// Deno's socket for a client that left during the upgrade: it never opens, and a close leaves
// it closing for good (its descriptor is kept; no close event ever comes).
function neverOpens(comm: Communicator): void {
  comm.socket.open = () => {};
  comm.socket.close = () => void (comm.socket.readyState = 2);
}

Deno.test("a socket that never opened keeps its address's place a while, not for good", async () => {
  await using services = await createTestServices({ maxConnectionsPerAddress: 1 });
  const { promise: gaveUp, resolve } = Promise.withResolvers<number>();
  const consumer: Consumer = () => ({ disconnect: (code) => resolve(code) });
  const app = createApp({
    routes: [socket("/ws/left/", consumer)],
    services,
    upgrade: testUpgrade,
  });
  const left = new Communicator(app, "/ws/left/");
  neverOpens(left);
  assertEquals((await left.connect()).status, 101);
  assertEquals(await gaveUp, 1006); // after OPEN_TIMEOUT_MS
  // Its place is still taken: one address cannot make Deno keep descriptors without bound.
  const next = new Communicator(app, "/ws/left/");
  assertEquals((await next.connect()).status, 429);
  const metrics = services.metrics.render();
  assert(metrics.includes('channels_handshakes_never_opened_total{route="/ws/left/"} 1'), metrics);
  await app.close();
});

Deno.test("the place of a socket that never opened is given back after its wait; a closing one's at its close", async () => {
  const caps = new ConnectionCaps({ perAddress: 1, perUser: 0 });
  const take = () => caps.acquire("192.0.2.7", null);
  const closing = { readyState: 2, onclose: null as (() => void) | null };
  const stuck = take() as CapLease;
  releaseWithSocket(stuck, closing as unknown as SocketLike, true, 30);
  assert("refused" in take(), "given back at once");
  const { promise: freed, resolve } = Promise.withResolvers<void>();
  setTimeout(resolve, 60); // the wait is a timer: nothing else says it is over
  await freed;
  const next = take();
  if ("refused" in next) throw new Error("still taken after its wait");
  // A socket that opened and waits for its client's close keeps the place until that close.
  releaseWithSocket(next, closing as unknown as SocketLike, false, 30);
  assert("refused" in take());
  closing.onclose!();
  assert(!("refused" in take()), "not given back at the close");
});

Deno.test("without TRUST_PROXY a client cannot pick its own address with X-Forwarded-For: the cap holds", async () => {
  await using server = await startTestServer({ maxConnectionsPerAddress: 1 });
  const url = server.wsUrl("/ws/echo/");
  const first = await TestSocket.open(url, { headers: { "x-forwarded-for": "203.0.113.1" } });
  try {
    assertEquals(await handshakeStatus(url, { "x-forwarded-for": "203.0.113.2" }), 429);
  } finally {
    await first.close();
  }
});
