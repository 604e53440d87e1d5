/**
 * A client whose connection is lost without a close frame (a network drop, a killed process):
 * the consumer and the metrics see 1006, as Channels and browsers report it.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { CloseCode, describeCloseCode } from "../../server/close_codes.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
import { CapturedLog } from "../_support/captured_log.ts";

Deno.test("a connection dropped without a close frame is closed with 1006", async () => {
  const { promise: disconnected, resolve } = Promise.withResolvers<number>();
  const recorder: Consumer = () => ({ disconnect: (code) => resolve(code) });
  await using server = await serveConsumer(recorder, "/ws/drop/");
  const raw = await RawWebSocket.open(server.url);
  raw.close(); // the TCP connection goes, with no close frame
  assertEquals(await disconnected, CloseCode.ABNORMAL_CLOSURE);
  assertEquals(describeCloseCode(1006), "1006 (ABNORMAL_CLOSURE)");
});

Deno.test("a socket Deno ends for a protocol error is logged with why, not as a bare drop", async () => {
  using captured = new CapturedLog();
  let closed = () => {};
  const recorder: Consumer = () => ({ disconnect: () => closed() });
  await using server = await serveConsumer(recorder, "/ws/bad/", { logLevel: "info" });
  const text = 0x81; // FIN and a text frame
  const frames: [string, number, Uint8Array][] = [
    ["Invalid UTF-8", text, new Uint8Array([0xff, 0xfe])],
    ["Reserved bits are not zero", text | 0x40, new TextEncoder().encode("hi")],
  ];
  for (const [why, head, payload] of frames) {
    const done = new Promise<void>((resolve) => closed = resolve);
    const raw = await RawWebSocket.open(server.url);
    await raw.sendFrame(head, payload);
    await done;
    raw.close();
    const line = await captured.waitFor(new RegExp(`DISCONNECT .*${why}`));
    assertStringIncludes(line, `closed: 1006 (ABNORMAL_CLOSURE): "${why}"`);
  }
  // A connection that merely dropped says no more than that (no "Unexpected EOF").
  const done = new Promise<void>((resolve) => closed = resolve);
  const dropped = await RawWebSocket.open(server.url);
  dropped.close();
  await done;
  const disconnects = captured.lines.filter((line) => line.includes("DISCONNECT"));
  assertEquals(disconnects.length, 3, disconnects.join("\n"));
  assert(disconnects[2].endsWith("(closed: 1006 (ABNORMAL_CLOSURE))"), disconnects[2]);
});
