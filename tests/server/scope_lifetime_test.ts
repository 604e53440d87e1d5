/**
 * A socket's scope reads the same in every hook as in `connect`, as Channels' `scope` does, for
 * the headers it keeps (`KEPT_HANDSHAKE_HEADERS`): on a real server, Deno makes a request's own
 * headers unreadable once the 101 has answered it.
 */
import { assertEquals, assertObjectMatch } from "@std/assert";
import { createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import type { Consumer } from "../../server/consumer.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";

// What a consumer reads of its scope, as one JSON-able object.
const readScope = (scope: Parameters<Consumer>[0]["scope"]) => ({
  language: scope.headers.get("accept-language"),
  custom: scope.headers.get("x-probe"),
  cookies: { ...scope.cookies },
  subprotocols: scope.subprotocols,
});

Deno.test("a consumer reads its scope's kept headers, cookies and subprotocols after connect as in it", async () => {
  const seen: Record<string, unknown> = {};
  const probe: Consumer = (conn) => ({
    connect() {
      // Nothing read here but the offer and one header: cookies are parsed when first read.
      conn.acceptSubprotocol("probe.v1");
      seen.connect = conn.scope.headers.get("x-probe");
    },
    receive() {
      seen.receive = readScope(conn.scope);
      conn.send("read");
    },
    disconnect() {
      seen.disconnect = readScope(conn.scope);
    },
  });
  await using server = await serveConsumer(probe, "/ws/probe/");
  // Deno's WebSocket client sends no cookies of its own: they are headers here.
  const client = new WebSocketStream(server.url, {
    protocols: ["probe.v1", "other"],
    headers: {
      "x-probe": "probe/1",
      "accept-language": "fr-CH, fr;q=0.9",
      cookie: "theme=dark",
    },
  });
  const { readable, writable } = await client.opened;
  await writable.getWriter().write("hello");
  assertEquals((await readable.getReader().read()).value, "read");
  client.close();
  await client.closed;
  await server[Symbol.asyncDispose]();
  const after = {
    language: "fr-CH, fr;q=0.9",
    // Read in `connect`, or not at all: only the kept headers outlive the handshake.
    custom: null,
    cookies: { theme: "dark" },
    subprotocols: ["probe.v1", "other"],
  };
  assertEquals(seen, { connect: "probe/1", receive: after, disconnect: after });
});

Deno.test("a scope.headers object kept from connect reads the kept headers later, on a real server and in the communicator alike", async () => {
  const probe: Consumer = (conn) => {
    let headers: Headers;
    return {
      connect() {
        headers = conn.scope.headers;
      },
      receive() {
        conn.send(JSON.stringify([headers.get("cookie"), headers.get("x-probe")]));
      },
    };
  };
  const expected = JSON.stringify(["theme=dark", null]);
  await using server = await serveConsumer(probe, "/ws/probe/");
  const client = new WebSocketStream(server.url, {
    headers: { cookie: "theme=dark", "x-probe": "probe/1" },
  });
  const { readable, writable } = await client.opened;
  await writable.getWriter().write("hello");
  assertEquals((await readable.getReader().read()).value, expected);
  client.close();
  await client.closed;

  await using services = await createTestServices();
  const app = createApp({ routes: [socket("/ws/probe/", probe)], services, upgrade: testUpgrade });
  try {
    const comm = new Communicator(app, "/ws/probe/", {
      headers: { cookie: "theme=dark", "x-probe": "probe/1" },
    });
    assertObjectMatch(await comm.connect(), { accepted: true });
    comm.send("hello");
    assertEquals(await comm.receive(), expected);
    await comm.disconnect();
  } finally {
    await app.close();
  }
});

Deno.test("scope.headers works where a Headers does: in a Response, and as a copy to change after connect", async () => {
  const seen: unknown[] = [];
  const probe: Consumer = (conn) => ({
    connect() {
      seen.push(new Response(null, { headers: conn.scope.headers }).headers.get("user-agent"));
    },
    receive() {
      const headers = conn.scope.headers;
      headers.delete("user-agent"); // a copy: the scope's own stay as they are
      seen.push(headers.get("user-agent"), conn.scope.headers.get("user-agent"));
      conn.send("read");
    },
  });
  await using server = await serveConsumer(probe, "/ws/probe/");
  const client = new WebSocketStream(server.url, { headers: { "user-agent": "probe/1" } });
  const { readable, writable } = await client.opened;
  await writable.getWriter().write("hello");
  assertEquals((await readable.getReader().read()).value, "read");
  client.close();
  await client.closed;
  // Deno's client puts its own name before the one given.
  const agent = "Deno/" + Deno.version.deno + ", probe/1";
  assertEquals(seen, [agent, null, agent]);
});

Deno.test("the communicator's handshake has a Host, as every real client's has: read in connect and after", async () => {
  const probe: Consumer = (conn) => {
    const inConnect: (string | null)[] = [];
    return {
      connect() {
        inConnect.push(conn.scope.headers.get("host"));
      },
      receive() {
        conn.send(JSON.stringify([...inConnect, conn.scope.headers.get("host")]));
      },
    };
  };
  await using services = await createTestServices();
  const app = createApp({ routes: [socket("/ws/probe/", probe)], services, upgrade: testUpgrade });
  try {
    for (
      const [path, options, host] of [
        ["/ws/probe/", {}, "localhost"],
        ["/ws/probe/", { headers: { host: "chat.example:8443" } }, "chat.example:8443"],
      ] as const
    ) {
      const comm = new Communicator(app, path, options);
      assertObjectMatch(await comm.connect(), { accepted: true });
      comm.send("hello");
      assertEquals(await comm.receive(), JSON.stringify([host, host]));
      await comm.disconnect();
    }
  } finally {
    await app.close();
  }
});
