/**
 * A layer of one's own that fails the way real clients fail: by throwing instead of rejecting
 * (a broker client whose connection is closed), or while its broker is away. One socket's
 * failure stays its own: the process goes on, the other sockets too, and nothing taken for the
 * failed one (a place under the caps) stays taken.
 */
import { assert, assertEquals, assertObjectMatch } from "@std/assert";
import { type Consumer, createApp, InMemoryLayer, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

/** An in-memory layer whose methods can be made to throw synchronously, one by one. */
class ThrowingLayer extends InMemoryLayer {
  readonly throwing = new Set<"newChannel" | "closeChannel" | "groupAdd" | "groupSend">();

  #check(method: "newChannel" | "closeChannel" | "groupAdd" | "groupSend"): void {
    if (this.throwing.has(method)) throw new Error(`Broker connection closed (${method})`);
  }
  override newChannel(...args: Parameters<InMemoryLayer["newChannel"]>): string {
    this.#check("newChannel");
    return super.newChannel(...args);
  }
  override closeChannel(channel: string): Promise<void> {
    this.#check("closeChannel");
    return super.closeChannel(channel);
  }
  override groupAdd(group: string, channel: string): Promise<void> {
    this.#check("groupAdd");
    return super.groupAdd(group, channel);
  }
  override groupSend(...args: Parameters<InMemoryLayer["groupSend"]>) {
    this.#check("groupSend");
    return super.groupSend(...args);
  }
}

const room: Consumer = (conn) => ({
  connect: () => conn.groupAdd("room"),
  events: { "room.note": (event) => conn.sendJson(event) },
});

Deno.test("a layer whose closeChannel throws ends one socket, not the process nor the others", async () => {
  using captured = new CapturedLog();
  const layer = new ThrowingLayer();
  await using services = await createTestServices({}, { layer });
  log.setLevel("warn"); // after the services, which set it silent
  const app = { consumer: room, services };
  const [leaver, bystander] = [new Communicator(app, "/ws/r/"), new Communicator(app, "/ws/r/")];
  assert((await leaver.connect()).accepted);
  assert((await bystander.connect()).accepted);
  layer.throwing.add("closeChannel");
  // Before, the throw escaped as an unhandled rejection: Deno ended the process (and this test).
  await leaver.disconnect();
  await captured.waitFor(/Could not close channel .* and leave its groups/);
  layer.throwing.delete("closeChannel");
  await services.layer.groupSend("room", { type: "room.note", text: "still here" });
  assertEquals(await bystander.receiveJson(), { type: "room.note", text: "still here" });
  await bystander.disconnect();
});

Deno.test("a layer that cannot open a channel refuses with 503 and gives the cap's place back", async () => {
  using _captured = new CapturedLog();
  const layer = new ThrowingLayer();
  await using services = await createTestServices({ maxConnectionsPerAddress: 1 }, { layer });
  const app = createApp({ routes: [socket("/ws/r/", room)], services, upgrade: testUpgrade });
  layer.throwing.add("newChannel"); // the broker is away
  for (let attempt = 0; attempt < 3; attempt++) {
    assertObjectMatch(await new Communicator(app, "/ws/r/").connect(), {
      accepted: false,
      status: 503,
    });
  }
  layer.throwing.delete("newChannel"); // back: the address's one place must be free
  const comm = new Communicator(app, "/ws/r/");
  assertEquals((await comm.connect()).accepted, true);
  await comm.disconnect();
  await app.close();
});

Deno.test("a layer that throws from groupAdd or groupSend gives the consumer a rejection to catch", async () => {
  const layer = new ThrowingLayer();
  await using services = await createTestServices({}, { layer });
  const failures: string[] = [];
  const consumer: Consumer = (conn) => ({
    receive(text) {
      // A consumer that handles the failure as the contract says: with `.catch`.
      const call = text === "add" ? conn.groupAdd("other") : conn.groupSend("room", { type: "x" });
      return call.then(
        () => conn.send(`${text}: done`),
        (error) => void failures.push(`${text}: ${error.message}`),
      ).then(() => conn.send(`${text}: handled`));
    },
  });
  const comm = new Communicator({ consumer, services }, "/ws/r/");
  await comm.connect();
  layer.throwing.add("groupAdd");
  layer.throwing.add("groupSend");
  comm.send("add");
  assertEquals(await comm.receive(), "add: handled");
  comm.send("send");
  assertEquals(await comm.receive(), "send: handled");
  assertEquals(failures, [
    "add: Broker connection closed (groupAdd)",
    "send: Broker connection closed (groupSend)",
  ]);
  assertEquals(await comm.receiveNothing(), true, "the socket was closed for the layer's throw");
  await comm.disconnect();
});
