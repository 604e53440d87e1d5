/**
 * The communicator says what is wrong when a test misuses it, as a browser's WebSocket would,
 * instead of orphaning a connection or dropping a frame without a word.
 */
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import type { Consumer } from "../../mod.ts";
import { Communicator, createTestServices } from "../../testing.ts";

const echo: Consumer = (conn) => ({ receive: (text) => conn.send(text) });

Deno.test("a send before an accepted connect throws, as a WebSocket still connecting does", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: echo, services }, "/ws/echo/");
  assertThrows(() => comm.send("too early"), Error, "await comm.connect() first");
  await comm.connect();
  comm.send("in time");
  assertEquals(await comm.receive(), "in time");
  await comm.disconnect();
});

Deno.test("a second connect throws instead of making a second, orphaned connection", async () => {
  await using services = await createTestServices();
  const before = services.layer.stats().channels;
  const comm = new Communicator({ consumer: echo, services }, "/ws/echo/");
  await comm.connect();
  await assertRejects(() => comm.connect(), Error, "make a new Communicator");
  await comm.disconnect();
  assertEquals(services.layer.stats().channels, before, "a connection was left behind");
});
