import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Communicator, createTestServices, testUpgrade } from "@channels/deno/testing";
import { createCounterApp } from "./counter.ts";

Deno.test("a click moves the count for everyone on the page", async () => {
  await using services = await createTestServices();
  const app = createCounterApp(services, testUpgrade);
  const ada = new Communicator(app, "/ws/counter/");
  const bob = new Communicator(app, "/ws/counter/");
  assert((await ada.connect()).accepted);
  assert((await bob.connect()).accepted);
  assertEquals(await ada.receiveJson(), { count: 0 });
  assertEquals(await bob.receiveJson(), { count: 0 });
  ada.send("click");
  assertEquals(await ada.receiveJson(), { count: 1 });
  assertEquals(await bob.receiveJson(), { count: 1 });
  bob.send("click");
  assertEquals(await ada.receiveJson(), { count: 2 });
  assertEquals(await bob.receiveJson(), { count: 2 });
  await app.close();
});

Deno.test("anything but a click gets an error frame and changes nothing", async () => {
  await using services = await createTestServices();
  const app = createCounterApp(services, testUpgrade);
  const comm = new Communicator(app, "/ws/counter/");
  await comm.connect();
  const { count } = await comm.receiveJson() as { count: number };
  comm.send("clack");
  assertEquals(await comm.receiveJson(), {
    type: "error",
    error: 'Send "click"',
    message: 'Send "click"',
  });
  assert(await comm.receiveNothing());
  // The next click counts from where the count was: the bad frame added nothing.
  comm.send("click");
  assertEquals(await comm.receiveJson(), { count: count + 1 });
  await app.close();
});

Deno.test("the page shows the count and loads its client", async () => {
  await using services = await createTestServices();
  const app = createCounterApp(services, testUpgrade);
  const response = await app.handle(new Request("http://localhost/"));
  assertEquals(response.status, 200);
  const body = await response.text();
  assertStringIncludes(body, '<output id="count">0</output>');
  assertStringIncludes(body, '<script type="module" src="/counter.js">');
  const script = await (await app.handle(new Request("http://localhost/counter.js"))).text();
  assertStringIncludes(script, 'import { LiveSocket } from "/channels/live_socket.js";');
  const client = await app.handle(new Request("http://localhost/channels/live_socket.js"));
  assertEquals(client.status, 200);
  assertStringIncludes(await client.text(), "export class LiveSocket");
  assertEquals((await app.handle(new Request("http://localhost/nowhere"))).status, 404);
  await app.close();
});
