/**
 * An app's own stream consumer answering the client module's sends: `ackFor` once the message
 * is stored, an error by `refOf` when it is refused. Over a real socket, with the client module
 * as a page would use it.
 */
import { assertEquals, assertRejects } from "@std/assert";
import {
  ackFor,
  type Consumer,
  type GroupStreams,
  ProtocolError,
  refOf,
  serveApp,
  socket,
  StreamFollowing,
} from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { connectStream, SendError, type StreamMessage } from "../../client/channels_client.js";
import { createApp } from "../../server/app.ts";

// The README's notes consumer, as an app writes it.
function notesConsumer(streams: GroupStreams): Consumer {
  const following = new StreamFollowing(streams);
  return (conn) => {
    const follower = following.follow(conn, "notes");
    return {
      async connect() {
        await conn.groupAdd("notes");
        await follower.enter();
      },
      async receiveJson(value) {
        const text = (value as { text?: unknown } | null)?.text;
        if (typeof text !== "string") {
          throw new ProtocolError('Expected {"text": "…"}', undefined, { ref: refOf(value) });
        }
        const published = await streams.publish("notes", { type: "note", text });
        const ack = ackFor(value, published);
        if (ack !== null) conn.sendJson(ack);
      },
      events: { note: (event) => follower.deliver(event) },
      drained: () => follower.resume(),
    };
  };
}

Deno.test("the client module's send with ack resolves on an app's own stream consumer, and a refusal rejects it", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [socket("/ws/notes/", notesConsumer(services.streams))],
    services,
  });
  const server = await serveApp(app, { hostname: "127.0.0.1", port: 0 });
  try {
    const received: StreamMessage[] = [];
    let bothCame = () => {};
    const both = new Promise<void>((resolve) => bothCame = resolve);
    let opened = () => {};
    const open = new Promise<void>((resolve) => opened = resolve);
    const stream = connectStream(`${server.url}/ws/notes/`, {
      window: new EventTarget(),
      onMessage: (message) => received.push(message) === 2 && bothCame(),
      onStateChange: (state) => state === "open" && opened(),
    });
    await open;
    // The ack comes by the send's ref, with where the message is stored: within the wait.
    const stored = await stream.send({ text: "first note" }, { ack: true });
    assertEquals(stored.offset, 1);
    assertEquals(typeof stored.epoch, "string");
    const refused = await assertRejects(
      () => stream.send({ note: "no text field" }, { ack: true }),
      SendError,
      'Expected {"text": "…"}',
    );
    assertEquals([refused.kind, refused.maybeStored], ["refused", false]);
    const again = await stream.send({ text: "second note" }, { ack: true });
    assertEquals(again.offset, 2);
    await both; // an ack may come before the message itself
    stream.close();
    assertEquals(received.map((message) => message.text), ["first note", "second note"]);
  } finally {
    await server.shutdown();
  }
});
