/**
 * A consumer picks the subprotocol its handshake is answered with, as Channels' consumer does
 * with `accept(subprotocol=...)`, from what the client offered (`scope.subprotocols`).
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { Consumer } from "../../mod.ts";
import { Communicator, createTestServices } from "../../testing.ts";
import { createTestApp } from "../_support/test_app.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

// Answers with the GraphQL protocol when offered, and echoes what it was offered.
const graphql: Consumer = (conn) => ({
  connect() {
    if (conn.scope.subprotocols.includes("graphql-transport-ws")) {
      conn.acceptSubprotocol("graphql-transport-ws");
    }
    conn.sendJson({ offered: conn.scope.subprotocols });
  },
  events: { note: (event) => conn.sendJson(event) },
});

Deno.test("a consumer answers with the subprotocol it picks from the client's offer", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: graphql, services }, "/ws/graphql/", {
    subprotocols: ["graphql-ws", "graphql-transport-ws"],
  });
  assert((await comm.connect()).accepted);
  assertEquals(comm.protocol, "graphql-transport-ws");
  assertEquals(await comm.receiveJson(), { offered: ["graphql-ws", "graphql-transport-ws"] });
  await comm.disconnect();
  const plain = new Communicator({ consumer: graphql, services }, "/ws/graphql/");
  await plain.connect();
  assertEquals([plain.protocol, await plain.receiveJson()], ["", { offered: [] }]);
  await plain.disconnect();
});

Deno.test("a subprotocol the client did not offer, or picked after the handshake, throws", async () => {
  await using services = await createTestServices();
  const greedy: Consumer = (conn) => ({
    connect: () => conn.acceptSubprotocol("mqtt"),
  });
  const refused = new Communicator({ consumer: greedy, services }, "/ws/g/", {
    subprotocols: ["graphql-ws"],
  });
  const error = await assertRejects(() => refused.connect(), Error, "refused with 500");
  assertEquals(
    (error.cause as Error).message,
    'The client did not offer the subprotocol "mqtt" (it offered "graphql-ws")',
  );
  const late: Consumer = (conn) => ({ receive: () => conn.acceptSubprotocol("graphql-ws") });
  const comm = new Communicator({ consumer: late, services }, "/ws/g/", {
    subprotocols: ["graphql-ws"],
  });
  await comm.connect();
  comm.send("now");
  await assertRejects(() => comm.receive(), Error, "call it in connect");
});

Deno.test("a consumer's subprotocol wins over batching's, and frames then go one by one", async () => {
  await using app = await createTestApp();
  const twoFrames: Consumer = (conn) => ({
    connect() {
      conn.acceptSubprotocol("graphql-transport-ws");
      conn.sendJson({ n: 1 }); // batched, these would arrive as one frame of two lines
      conn.sendJson({ n: 2 });
    },
  });
  const comm = new Communicator({ consumer: twoFrames, services: app.services }, "/ws/g/", {
    subprotocols: ["channels.batch", "graphql-transport-ws"],
  });
  assert((await comm.connect()).accepted);
  assertEquals(comm.protocol, "graphql-transport-ws");
  assertEquals([await comm.receive(), await comm.receive()], ['{"n":1}', '{"n":2}']);
  await comm.disconnect();
});

Deno.test("a real client that insists on a subprotocol gets it from the server", async () => {
  await using server = await serveConsumer(graphql, "/ws/graphql/");
  const ws = new WebSocket(server.url.replace(/^http/, "ws"), ["graphql-transport-ws"]);
  const first = new Promise<string>((resolve, reject) => {
    ws.onmessage = (event) => resolve(String(event.data));
    ws.onerror = () => reject(new Error("the handshake failed"));
  });
  assertEquals(JSON.parse(await first), { offered: ["graphql-transport-ws"] });
  assertEquals(ws.protocol, "graphql-transport-ws");
  const closed = new Promise((resolve) => ws.onclose = resolve);
  ws.close();
  await closed;
});

Deno.test("an offer written without a space after its commas gets a 101 naming none, not a 500", async () => {
  // Deno answers only a name it finds by splitting the offer at ", ": `a,b` (valid HTTP, what
  // Python's websocket-client sends) cannot be answered with `a`, and asking it to throws.
  await using app = await createTestApp();
  for (const offer of ["graphql-transport-ws,other", "other,channels.batch"]) {
    const comm = new Communicator({ consumer: graphql, services: app.services }, "/ws/graphql/", {
      headers: { "sec-websocket-protocol": offer },
    });
    assert((await comm.connect()).accepted, offer);
    assertEquals(comm.protocol, "", offer);
    // Offered, all the same: the consumer sees what the client said.
    assertEquals((await comm.receiveJson()).offered, offer.split(","), offer);
    await comm.disconnect();
  }
});

Deno.test("the warning for an offer Deno cannot answer keeps what the client wrote on one line", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("warn");
  const forged = "channels.batch,x\x852026-12-05T00:00:00.000Z ERROR FORGED"; // 0x85: NEL
  const comm = new Communicator({ consumer: graphql, services: app.services }, "/ws/graphql/", {
    headers: { "sec-websocket-protocol": forged },
  });
  assert((await comm.connect()).accepted);
  const line = await captured.waitFor(/names no subprotocol/);
  assert(!/[\u0085\n\r]/.test(line), `a line break got through: ${JSON.stringify(line)}`);
  await comm.disconnect();
});

Deno.test("the subprotocol a consumer picked stays on one line in the warning too", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("warn");
  const first: Consumer = (conn) => ({
    connect: () => conn.acceptSubprotocol(conn.scope.subprotocols[0]),
  });
  const comm = new Communicator({ consumer: first, services: app.services }, "/ws/first/", {
    headers: { "sec-websocket-protocol": "tok\x852026-12-05T00:00:00.000Z ERROR FORGED,b" },
  });
  assert((await comm.connect()).accepted);
  const line = await captured.waitFor(/names no subprotocol/);
  assert(!/[\u0085\n\r]/.test(line), `a line break got through: ${JSON.stringify(line)}`);
  await comm.disconnect();
});

Deno.test("the warning quotes at most 200 characters of a huge offer, and says its length", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("warn");
  const huge = "channels.batch," + "x".repeat(60_000); // no ", ": Deno cannot answer it
  const comm = new Communicator({ consumer: graphql, services: app.services }, "/ws/graphql/", {
    headers: { "sec-websocket-protocol": huge },
  });
  assert((await comm.connect()).accepted);
  const line = await captured.waitFor(/names no subprotocol/);
  assert(line.length < 1000, `the warning is ${line.length} characters long`);
  assert(line.includes(`(${huge.length} characters)`), line);
  await comm.disconnect();
});
