/** A handshake that fails after `connect` ran leaves nothing behind. */
import { assertEquals, assertObjectMatch } from "@std/assert";
import { type Consumer, createApp, type GroupLayer, InMemoryLayer, socket } from "../../mod.ts";
import { Communicator, createTestServices, testUpgrade } from "../../testing.ts";

/** An in-memory layer that cannot reach the session groups, as when a broker is away. */
function layerWithoutSessionGroups(): GroupLayer {
  const layer = new InMemoryLayer();
  const groupAdd = layer.groupAdd.bind(layer);
  layer.groupAdd = (group, channel) =>
    group.startsWith("session.")
      ? Promise.reject(new Error("Broker away"))
      : groupAdd(group, channel);
  return layer;
}

Deno.test("a session group that cannot be joined answers 503 and runs disconnect", async () => {
  const layer = layerWithoutSessionGroups();
  await using services = await createTestServices({ maxConnectionsPerUser: 1 }, { layer });
  const disconnected: number[] = [];
  const consumer: Consumer = (conn) => ({
    connect: () => conn.groupAdd("room"),
    disconnect: (code) => void disconnected.push(code),
  });
  const app = createApp({
    routes: [socket("/ws/private/", consumer, { loginRequired: true })],
    services,
    upgrade: testUpgrade,
  });
  await services.users.create("ada", "quiet river stone");
  const { id } = await services.sessions.create("ada");
  const before = layer.stats();
  for (let attempt = 0; attempt < 2; attempt++) {
    const comm = new Communicator(app, "/ws/private/", { headers: { cookie: `sessionid=${id}` } });
    // Twice: a place under the per-user cap of 1 must have been given back the first time.
    assertObjectMatch(await comm.connect(), { accepted: false, status: 503 });
  }
  assertEquals(disconnected, [1013, 1013]);
  const after = layer.stats();
  assertEquals(after.channels, before.channels, "the refused connections kept their channels");
  assertEquals(after.groups, before.groups, "the room group kept a member");
  await app.close();
});
