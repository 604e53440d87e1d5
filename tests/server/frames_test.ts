/** What a consumer sends reaches the socket as it was at the moment of sending. */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { Communicator, createTestServices } from "../../testing.ts";
import type { Consumer, LayerEvent } from "../../mod.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { PING_FRAME, PONG_FRAME } from "../../server/_connection_constants.ts";

Deno.test("an object changed after sendJson is sent as it was each time", async () => {
  await using services = await createTestServices();
  const consumer: Consumer = (conn) => ({
    receive() {
      const counter = { n: 1 };
      conn.sendJson(counter);
      counter.n++;
      conn.sendJson(counter);
    },
  });
  const comm = new Communicator({ consumer, services }, "/ws/t/");
  await comm.connect();
  comm.send("go");
  assertEquals(await comm.receiveJson(), { n: 1 });
  assertEquals(await comm.receiveJson(), { n: 2 });
  await comm.disconnect();
});

Deno.test("bytes changed after send are sent as they were, before the socket opens and after", async () => {
  await using services = await createTestServices();
  const sendTwice = (conn: Parameters<Consumer>[0]) => {
    const buffer = new Uint8Array([1, 2, 3]);
    conn.send(buffer);
    buffer.set([7, 8, 9]); // the buffer reused, as a codec reuses its output
    conn.send(buffer);
  };
  const consumer: Consumer = (conn) => ({
    connect: () => sendTwice(conn), // queued until the socket opens
    receive: () => sendTwice(conn),
  });
  const comm = new Communicator({ consumer, services }, "/ws/t/");
  await comm.connect();
  comm.send("again");
  const frames = [];
  for (let n = 0; n < 4; n++) frames.push([...await comm.receive() as Uint8Array]);
  assertEquals(frames, [[1, 2, 3], [7, 8, 9], [1, 2, 3], [7, 8, 9]]);
  await comm.disconnect();
});

Deno.test("a group event is frozen once sent, so no member can change what others get", async () => {
  await using services = await createTestServices();
  const consumer: Consumer = (conn) => ({
    connect: () => conn.groupAdd("g"),
    events: {
      note(event: LayerEvent) {
        assertThrows(() => event.text = "changed", TypeError);
        conn.sendJson(event);
      },
    },
  });
  const [a, b] = [
    new Communicator({ consumer, services }, "/ws/a/"),
    new Communicator({ consumer, services }, "/ws/b/"),
  ];
  await a.connect();
  await b.connect();
  const event = { type: "note", text: "hi", nested: { list: [1] } };
  await services.layer.groupSend("g", event);
  assert(Object.isFrozen(event) && Object.isFrozen(event.nested.list));
  assertEquals(await a.receiveJson(), { type: "note", text: "hi", nested: { list: [1] } });
  assertEquals(await b.receiveJson(), { type: "note", text: "hi", nested: { list: [1] } });
  await a.disconnect();
  await b.disconnect();
});

Deno.test("frames sent before the socket opens beyond its queue are counted and logged", async () => {
  using captured = new CapturedLog();
  const { lines } = captured;
  // "frame n" is 7 bytes, and each waiting frame counts 32 more: three fit in 4 x 30 bytes.
  await using services = await createTestServices({ maxBufferedBytes: 30, logLevel: "warn" });
  const consumer: Consumer = (conn) => ({
    connect() {
      for (let n = 1; n <= 5; n++) conn.send(`frame ${n}`);
    },
  });
  const comm = new Communicator({ consumer, services }, "/ws/t/");
  await comm.connect();
  assertEquals([await comm.receive(), await comm.receive(), await comm.receive()], [
    "frame 1",
    "frame 2",
    "frame 3",
  ]);
  assert(await comm.receiveNothing(50));
  assertEquals(comm.droppedBeforeOpen, 2);
  assert(
    lines.some((line) => /WARN Dropped 2 frame\(s\) sent to \/ws\/t\//.test(line)),
    lines.join("\n"),
  );
  await comm.disconnect();
});

Deno.test("the client module's heartbeat ping is answered by the framework; the consumer never sees it", async () => {
  await using services = await createTestServices();
  const seen: string[] = [];
  const consumer: Consumer = () => ({ receive: (text) => void seen.push(text) });
  const comm = new Communicator({ consumer, services }, "/ws/quiet/");
  await comm.connect();
  comm.send(PING_FRAME);
  assertEquals(await comm.receive(), PONG_FRAME);
  assertEquals(PING_FRAME, '{"type":"channels.ping"}'); // the wire format the README documents
  comm.send("a frame of its own");
  comm.send('{"type": "channels.ping"}'); // not the exact frame: the consumer's to handle
  await comm.disconnect();
  assertEquals(seen, ["a frame of its own", '{"type": "channels.ping"}']);
});
