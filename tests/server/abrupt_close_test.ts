/**
 * A client whose connection is lost without a close frame (a network drop, a killed process):
 * the consumer and the metrics see 1006, as Channels and browsers report it.
 */
import { assertEquals } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { CloseCode, describeCloseCode } from "../../server/close_codes.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";

Deno.test("a connection dropped without a close frame is closed with 1006", async () => {
  const { promise: disconnected, resolve } = Promise.withResolvers<number>();
  const recorder: Consumer = () => ({ disconnect: (code) => resolve(code) });
  await using server = await serveConsumer(recorder, "/ws/drop/");
  const raw = await RawWebSocket.open(server.url);
  raw.close(); // the TCP connection goes, with no close frame
  assertEquals(await disconnected, CloseCode.ABNORMAL_CLOSURE);
  assertEquals(describeCloseCode(1006), "1006 (ABNORMAL_CLOSURE)");
});
