/**
 * Two processes on one Redis: while one process's subscription is lost, what the other
 * publishes to a room does not reach it through pub/sub. Once the subscription is back, its
 * sockets get those messages from the room's stream, even if the room has gone quiet.
 */
import { assertEquals } from "@std/assert";
import { createClient } from "redis";
import { Communicator, loggedInHeaders } from "../../testing.ts";
import { sessionGroup } from "../../auth/sessions.ts";
import { createTestApp } from "../_support/test_app.ts";
import { RedisLayer } from "../../layers/redis.ts";
import { RedisStreams } from "../../layers/streams/redis.ts";
import { RedisStore } from "../../storage/redis_store.ts";
import { redisAvailability, startRedisServer, uniquePrefix } from "../_support/redis.ts";

const { available } = await redisAvailability({ privateServer: true });
const GENEROUS = { rateLimit: { perSecond: 100_000, burst: 100_000 } };

// One server process on `url`: its Redis layer, streams and store, under a test app.
async function openProcess(url: string, prefix: string) {
  const layer = await RedisLayer.open({ url, prefix });
  const streams = await RedisStreams.open({ url, prefix, layer, publishInScript: true });
  const store = await RedisStore.open({ url, prefix });
  return await createTestApp(GENEROUS, { layer, streams, store });
}

/**
 * Two server processes on one private Redis: A connects as a Redis user of its own, whom the
 * test can cut off (`cutOffA`: every one of A's connections is cut and kept out, as a network
 * partition or a Redis restart does) and let back in (`admitA`: each connection then comes
 * back on its own). `await using` closes it all.
 */
async function twoProcesses(name: string) {
  const redis = await startRedisServer();
  const admin = createClient({ url: redis.url });
  await admin.connect();
  await admin.sendCommand(["ACL", "SETUSER", "a", "on", ">a-secret", "~*", "&*", "+@all"]);
  const prefix = uniquePrefix(name);
  const a = await openProcess(`redis://a:a-secret@127.0.0.1:${redis.port}`, prefix);
  const b = await openProcess(redis.url, prefix);
  // Redis closes killed connections on its next turn: none of A's may still be listed.
  const listed = async () =>
    String(await admin.sendCommand(["CLIENT", "LIST"])).includes(" user=a ");
  return {
    a,
    b,
    async cutOffA() {
      await admin.sendCommand(["ACL", "SETUSER", "a", "off"]);
      await admin.sendCommand(["CLIENT", "KILL", "USER", "a"]);
      for (let tries = 0; await listed(); tries++) {
        if (tries > 100) throw new Error("A's connections are still open");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    admitA: () => admin.sendCommand(["ACL", "SETUSER", "a", "on"]),
    async [Symbol.asyncDispose]() {
      await a[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
      await admin.quit();
      await redis[Symbol.asyncDispose]();
    },
  };
}

Deno.test({
  name:
    "a socket whose process lost its Redis subscription gets what was sent meanwhile, in a room gone quiet",
  ignore: !available,
  fn: async () => {
    await using processes = await twoProcesses("gap");
    const { a, b } = processes;
    const reader = new Communicator(a, "/ws/chat/quiet/?stream=1");
    await reader.connect();
    assertEquals((await reader.receiveJson()).type, "recovered");
    const sender = new Communicator(b, "/ws/chat/quiet/");
    await sender.connect();
    sender.sendJson({ message: "before" });
    assertEquals((await reader.receiveJson()).message, "before");
    assertEquals((await sender.receiveJson()).message, "before");
    // A is cut off until B's next message is stored.
    await processes.cutOffA();
    sender.sendJson({ message: "during", ack: true, ref: "d" });
    // Its own copy and its ack, in either order: once acked, it is stored.
    const answers = [await sender.receiveJson(), await sender.receiveJson()];
    assertEquals(answers.map((frame) => [frame.type, frame.offset]).sort(), [
      ["ack", 2],
      ["chat.message", 2],
    ]);
    await processes.admitA();
    // Nothing else is sent to the room: the message comes from the stream.
    const missed = await reader.receiveJson(15_000);
    assertEquals([missed.message, missed.offset], ["during", 2]);
    await reader.disconnect();
    await sender.disconnect();
  },
});

Deno.test({
  name:
    "a log-out whose close was lost while the process's Redis subscription was down still closes its sockets there",
  ignore: !available,
  fn: async () => {
    await using processes = await twoProcesses("logout");
    const { a, b } = processes;
    const headers = await loggedInHeaders(a.services, "ada");
    const sessionId = headers.cookie.split("=")[1];
    const socket = new Communicator(a, "/ws/chat/lobby/", { headers });
    assertEquals((await socket.connect()).accepted, true);
    const sender = new Communicator(b, "/ws/chat/lobby/");
    await sender.connect();
    // A is cut off while the session ends on B: the log-out's close, sent through Redis, is
    // lost to A.
    await processes.cutOffA();
    await b.services.sessions.delete(sessionId);
    const close = { type: "connection.close", code: 4001, reason: "Logged out" };
    const sent = await b.services.layer.groupSend(await sessionGroup(sessionId), close);
    assertEquals(sent.remoteProcesses, 0, "A still heard the group: nothing was lost");
    // The room goes on after the log-out: none of it may reach the logged-out socket.
    sender.sendJson({ message: "after the log-out", ack: true, ref: "after" });
    await sender.receiveJson();
    await sender.receiveJson(); // its copy and its ack: stored
    await processes.admitA();
    // Once A is back, the socket's session is read again: gone, the socket closes.
    assertEquals(await socket.waitForClose(15_000), 4001);
    const sentAfter: unknown[] = [];
    for (;;) {
      const frame = await socket.receiveJson().catch(() => null);
      if (frame === null) break;
      sentAfter.push(frame.message);
    }
    assertEquals(sentAfter, [], "the logged-out socket was sent what came after its log-out");
    await sender.disconnect();
  },
});
