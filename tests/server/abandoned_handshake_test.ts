/**
 * A client that leaves while `connect` runs (a closed tab, a dropped mobile link): Deno would
 * keep the descriptor of a socket upgraded for it for good, so the server does not upgrade it.
 * Needs `--unstable-no-legacy-abort`, which the tasks pass.
 */
import { assert, assertEquals } from "@std/assert";
import type { Connection, Consumer } from "../../server/consumer.ts";
import { acceptedSubprotocols, type WebSocketConnection } from "../../server/_connection.ts";
import { createApp, socket } from "../../mod.ts";
import { createTestServices, testUpgrade } from "../../testing.ts";
import type { Config } from "../../server/config.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const CLIENTS = 20;
const openDescriptors = () => [...Deno.readDirSync("/proc/self/fd")].length;

// Sockets of this process's server on `port` whose client has closed its end (CLOSE-WAIT).
function closeWaiting(port: number): number {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const [, address, , state] = line.trim().split(/\s+/);
      if (address?.endsWith(local) && state === "08") count++;
    }
  }
  return count;
}

Deno.test({
  name: "a client gone before its handshake is answered is not upgraded, and leaves no descriptor",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    using captured = new CapturedLog();
    const gate = Promise.withResolvers<void>();
    const codes: number[] = [];
    const allDone = Promise.withResolvers<void>();
    const slow: Consumer = () => ({
      connect: () => gate.promise,
      disconnect(code) {
        codes.push(code);
        if (codes.length === CLIENTS) allDone.resolve();
      },
    });
    // No listener of the test's own on the request's signal: the route must notice by itself
    // (Deno aborts a signal only when something listens to it).
    let requests = 0;
    await using server = await serveConsumer(slow, "/ws/slow/", {
      logLevel: "info",
      onRequest: () => void requests++,
    });
    const before = openDescriptors();
    const { hostname, port } = new URL(server.url);
    for (let n = 0; n < CLIENTS; n++) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
      await conn.write(new TextEncoder().encode(
        `GET /ws/slow/ HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ));
      while (requests <= n) await new Promise((resolve) => setTimeout(resolve, 1));
      conn.close(); // gone while `connect` still runs
    }
    // The server's kernel has each one's FIN (its socket waits in CLOSE-WAIT) before `connect`
    // goes on.
    while (closeWaiting(Number(port)) < CLIENTS) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    gate.resolve();
    // Refused, not upgraded (an upgraded one would wait for Deno, which never closes it).
    await captured.waitFor(
      /^WebSocket REJECT \/ws\/slow\/ .*\(the client left during the handshake\)$/,
    );
    await allDone.promise;
    assertEquals(codes, Array(CLIENTS).fill(CloseCode.ABNORMAL_CLOSURE));
    // Upgraded, each would keep its descriptor for good; refused, Deno lets go of it within
    // a moment, which nothing announces: the test looks again for up to 2 s.
    let after = openDescriptors();
    for (let n = 0; n < 20 && after >= before + CLIENTS / 2; n++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = openDescriptors();
    }
    assert(after < before + CLIENTS / 2, `descriptors went from ${before} to ${after}`);
  },
});

/**
 * An app whose one route counts its `connect`s, and a handshake to it from a connection Deno
 * gives the address 0.0.0.0:0 (reset before Deno read it), with `headers` added.
 */
async function appForResetHandshakes(config: Partial<Config>) {
  const services = await createTestServices(config);
  const counts = { connects: 0 };
  const counted: Consumer = () => ({ connect: () => void counts.connects++ });
  const app = createApp({ routes: [socket("/ws/c/", counted)], services, upgrade: testUpgrade });
  const gone = { remoteAddr: { transport: "tcp", hostname: "0.0.0.0", port: 0 } };
  return {
    app,
    counts,
    handshake: async (headers: Record<string, string> = {}) => {
      const request = new Request("http://localhost/ws/c/", {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-version": "13",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          ...headers,
        },
      });
      return (await app.handle(request, gone as Deno.ServeHandlerInfo)).status;
    },
    async [Symbol.asyncDispose]() {
      await app.close();
      await services[Symbol.asyncDispose]();
    },
  };
}

Deno.test("a handshake whose client reset the connection before Deno read its address is not upgraded", async () => {
  // Deno gives such a request the address 0.0.0.0:0: the client is gone, and an upgraded socket
  // would keep its descriptor for good, while all such clients shared one place under the caps.
  using _captured = new CapturedLog();
  await using t = await appForResetHandshakes({ maxConnectionsPerAddress: 1 });
  for (let n = 0; n < 3; n++) assertEquals(await t.handshake(), 499);
  assertEquals([t.counts.connects, t.app.caps.stats().addresses], [0, 0]);
});

Deno.test("behind a trusted proxy, a handshake whose proxy connection was reset is not upgraded", async () => {
  using _captured = new CapturedLog();
  await using t = await appForResetHandshakes({ trustProxy: true });
  // The client's address as the proxy wrote it: the connection's own is what tells.
  assertEquals(await t.handshake({ "x-forwarded-for": "203.0.113.7" }), 499);
  assertEquals(t.counts.connects, 0);
});

Deno.test("an upgraded socket keeps neither the handshake's abort listener nor its accepted subprotocol", async () => {
  // Each is a few hundred bytes per open socket, kept for as long as it is open.
  let accepted: Connection | undefined;
  const choosing: Consumer = (conn) => ({
    connect() {
      accepted = conn;
      conn.acceptSubprotocol("chat.v2");
    },
  });
  // The route's listeners on each request's signal, as it adds and removes them.
  const listening = new Set<unknown>();
  const watchListeners = (request: Request) => {
    const signal = request.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = (type: string, listener: unknown, options?: unknown) => {
      listening.add(listener);
      add(type, listener as EventListener, options as AddEventListenerOptions);
    };
    signal.removeEventListener = (type: string, listener: unknown, options?: unknown) => {
      listening.delete(listener);
      remove(type, listener as EventListener, options as EventListenerOptions);
    };
  };
  await using server = await serveConsumer(choosing, "/ws/c/", { onRequest: watchListeners });
  const client = new WebSocket(server.url, ["chat.v2"]);
  const closed = new Promise((resolve) => client.onclose = resolve);
  await new Promise((resolve, reject) => {
    client.onopen = resolve;
    client.onerror = reject;
  });
  try {
    assertEquals(client.protocol, "chat.v2");
    assertEquals(listening.size, 0, "the route's abort listener outlived the upgrade");
    assert(accepted !== undefined);
    assertEquals(acceptedSubprotocols.has(accepted as WebSocketConnection), false);
  } finally {
    client.close();
    await closed;
  }
});
