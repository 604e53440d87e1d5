/** The stream follower's failures: misuse, a frameOf that throws, a resend that cannot be read. */
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Communicator, createTestServices } from "../../testing.ts";
import { type Consumer, type GroupStreams, RECOVERED, StreamFollowing } from "../../mod.ts";
import { LAYER_GAP } from "../../layers/layer.ts";
import { CloseCode } from "../../server/close_codes.ts";
import {
  ControlledStreams,
  deliver,
  frames,
  GROUP,
  notesConsumer,
  open,
  publish,
} from "./_stream_follower_support.ts";

Deno.test("a follower entered twice, or of a group no layer takes, says so at once", async () => {
  await using services = await createTestServices();
  const following = new StreamFollowing(services.streams);
  const entered: Promise<void>[] = [];
  let refusedName: unknown = null;
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, GROUP);
    const misnamed = following.follow(conn, "");
    return {
      async connect() {
        await conn.groupAdd(GROUP);
        await follower.enter();
        entered.push(follower.enter());
        refusedName = await misnamed.enter().then(() => null, (error) => error);
      },
    };
  };
  await open(consumer, services);
  const error = await entered[0].then(() => null, (error: Error) => error);
  assert(error instanceof Error && /called already/.test(error.message), String(error));
  assert(refusedName instanceof TypeError, String(refusedName));
});

Deno.test("a frameOf that throws while a gap is read closes only that socket, with 1011, and the server goes on", async () => {
  // The throw happens away from any hook (a read the follower started on its own); it used to
  // end the process as an unhandled rejection.
  using captured = new CapturedLog();
  await using services = await createTestServices();
  log.setLevel("error"); // the test services' level is "silent", which they set again
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  await using streams = await ControlledStreams.open();
  const consumer = notesConsumer(services, {
    frameOf(event, conn) {
      if (event.text === "bad" && conn.scope.query.get("user") === "a") {
        throw new TypeError("the app's bug in frameOf");
      }
      return event;
    },
  }, streams);
  const a = await open(consumer, services, "?stream=1&user=a");
  const b = await open(consumer, services, "?stream=1&user=b");
  await a.receiveJson(); // their positions
  await b.receiveJson();
  const events = await streams.publishAll("n1", "bad", "n3");
  // Event 1 is overtaken: both sockets read the gap, and the read sends "bad".
  await deliver(services, events.slice(1));
  assertEquals((await a.receiveJson()).text, "n1");
  // Raised by the communicator, as a hook's throw is.
  const error = await assertRejects(() => a.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "TypeError: the app's bug in frameOf");
  assertEquals(await a.waitForClose(), 1011);
  assertEquals((await frames(b, 3)).map((f) => f.text), ["n1", "bad", "n3"]);
  await captured.waitFor(/Consumer failed on \/ws\/notes\/.*TypeError: the app's bug in frameOf/s);
  // The other socket, and the route, go on.
  await deliver(services, await streams.publishAll("n4"));
  assertEquals((await b.receiveJson()).text, "n4");
  const c = await open(consumer, services, "?stream=1&user=c");
  assertEquals((await c.receiveJson()).type, RECOVERED);
  await b.disconnect();
  await c.disconnect();
});

Deno.test("a frameOf that returns no JSON while a gap is read closes that socket with 1011, not as a store outage", async () => {
  await using services = await createTestServices();
  await using streams = await ControlledStreams.open();
  const consumer = notesConsumer(services, {
    frameOf: (event) => event.text === "bad" ? { ...event, big: 1n } : event,
  }, streams);
  const comm = await open(consumer, services, "?stream=1");
  await comm.receiveJson(); // its position
  const events = await streams.publishAll("n1", "bad", "n3");
  await deliver(services, events.slice(1)); // event 1 overtaken: the gap read sends "bad"
  assertEquals((await comm.receiveJson()).text, "n1");
  const error = await assertRejects(() => comm.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "BigInt");
  assertEquals(await comm.waitForClose(), 1011);
});

Deno.test("a frameOf that throws on a live event is raised by the communicator, as a hook's throw is", async () => {
  await using services = await createTestServices();
  const consumer = notesConsumer(services, {
    frameOf(event) {
      if (event.text === "bad") throw new RangeError("the app's bug in frameOf");
      return event;
    },
  });
  const comm = await open(consumer, services, "?stream=1");
  await comm.receiveJson(); // its position
  await publish(services, "bad");
  const error = await assertRejects(() => comm.receive(), Error, "closed with 1011");
  assertStringIncludes(error.message, "RangeError: the app's bug in frameOf");
});

Deno.test("a resend whose stream cannot be read (its re-entry read fails too) closes the socket to reconnect, not as the consumer's failure", async () => {
  await using services = await createTestServices();
  let failing: "no" | "once incomplete" | "yes" = "no";
  const real = services.streams;
  const away = () => Promise.reject(new Error("store away"));
  const streams = Object.assign(Object.create(real) as GroupStreams, {
    since: (...args: Parameters<GroupStreams["since"]>) => {
      if (failing === "no") return real.since(...args);
      if (failing === "yes") return away();
      failing = "yes"; // missed more than is kept, then the store goes away for good
      return Promise.resolve({ epoch: "e", offset: 0, complete: false, events: [] });
    },
    latest: (...args: Parameters<GroupStreams["latest"]>) =>
      failing === "yes" ? away() : real.latest(...args),
  });
  const following = new StreamFollowing(streams);
  const consumer: Consumer = (conn) => {
    const follower = following.follow(conn, "notes");
    return {
      async connect() {
        await conn.groupAdd("notes");
        await follower.enter();
      },
      drained: () => follower.resume(),
      events: { note: (event) => follower.deliver(event) },
    };
  };
  const comm = new Communicator({ consumer, services }, "/ws/notes/");
  assert((await comm.connect()).accepted);
  await real.publish("notes", { type: "note", text: "a" });
  assertEquals((await comm.receiveJson()).text, "a");
  failing = "once incomplete";
  // What a restored Redis subscription hands the group's members: `drained`, so `resume()`.
  await services.layer.groupSend("notes", { type: LAYER_GAP });
  assertEquals(await comm.waitForClose(15_000), CloseCode.TRY_AGAIN_LATER);
});
