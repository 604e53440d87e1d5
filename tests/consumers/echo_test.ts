import { assert, assertEquals, assertObjectMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { createTestApp } from "../_support/test_app.ts";

Deno.test("echo replies to each text frame with what was said", async () => {
  await using app = await createTestApp();
  const comm = new Communicator(app, "/ws/echo/");
  assert((await comm.connect()).accepted);
  comm.send("hello");
  comm.send("café ☕");
  assertEquals(await comm.receive(), "You said: hello");
  assertEquals(await comm.receive(), "You said: café ☕");
  await comm.disconnect();
  assertEquals(comm.closeCode, 1000);
});

Deno.test("echo sends binary frames back unchanged", async () => {
  await using app = await createTestApp();
  const comm = new Communicator(app, "/ws/echo/");
  await comm.connect();
  comm.send(new Uint8Array([0, 1, 2, 255]));
  assertEquals(await comm.receive(), new Uint8Array([0, 1, 2, 255]));
  await comm.disconnect();
});

Deno.test("the text close makes the server close the socket normally", async () => {
  await using app = await createTestApp();
  const comm = new Communicator(app, "/ws/echo/");
  await comm.connect();
  comm.send("close");
  assertEquals(await comm.waitForClose(), 1000);
  assertEquals(app.live.size, 0);
});

Deno.test("echo stays silent until it is spoken to", async () => {
  await using app = await createTestApp();
  const comm = new Communicator(app, "/ws/echo/");
  await comm.connect();
  assert(await comm.receiveNothing());
  await comm.disconnect();
});

Deno.test("a plain GET to the echo endpoint is told to upgrade (426)", async () => {
  await using app = await createTestApp();
  const response = await app.handle(new Request("http://localhost/ws/echo/"));
  await response.body?.cancel();
  assertEquals(response.status, 426);
});

Deno.test("a handshake from another site's page is refused with 403", async () => {
  await using app = await createTestApp();
  const comm = new Communicator(app, "/ws/echo/", { headers: { origin: "https://evil.example" } });
  assertObjectMatch(await comm.connect(), { accepted: false, status: 403 });
  assertEquals(app.live.size, 0);
});

Deno.test("a handshake from the server's own origin is accepted", async () => {
  await using app = await createTestApp();
  const comm = new Communicator(app, "/ws/echo/", { headers: { origin: "http://localhost" } });
  assert((await comm.connect()).accepted);
  await comm.disconnect();
});
