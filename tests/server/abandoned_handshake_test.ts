/**
 * A client that leaves while `connect` runs (a closed tab, a dropped mobile link): Deno would
 * keep the descriptor of a socket upgraded for it for good, so the server does not upgrade it.
 * Needs `--unstable-no-legacy-abort`, which the tasks pass.
 */
import { assert, assertEquals } from "@std/assert";
import type { Consumer } from "../../server/consumer.ts";
import { CloseCode } from "../../server/close_codes.ts";
import { serveConsumer } from "../_support/serve_consumer.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const CLIENTS = 20;
const openDescriptors = () => [...Deno.readDirSync("/proc/self/fd")].length;

Deno.test({
  name: "a client gone before its handshake is answered is not upgraded, and leaves no descriptor",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    using captured = new CapturedLog();
    const gate = Promise.withResolvers<void>();
    const codes: number[] = [];
    const allDone = Promise.withResolvers<void>();
    const slow: Consumer = () => ({
      connect: () => gate.promise,
      disconnect(code) {
        codes.push(code);
        if (codes.length === CLIENTS) allDone.resolve();
      },
    });
    const aborted: Promise<void>[] = [];
    await using server = await serveConsumer(slow, "/ws/slow/", {
      logLevel: "info",
      onRequest: (request) =>
        aborted.push(
          new Promise((resolve) => request.signal.addEventListener("abort", () => resolve())),
        ),
    });
    const before = openDescriptors();
    const { hostname, port } = new URL(server.url);
    for (let n = 0; n < CLIENTS; n++) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
      await conn.write(new TextEncoder().encode(
        `GET /ws/slow/ HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ));
      while (aborted.length <= n) await new Promise((resolve) => setTimeout(resolve, 1));
      conn.close(); // gone while `connect` still runs
    }
    await Promise.all(aborted); // the server saw each one go
    gate.resolve();
    await allDone.promise;
    assertEquals(codes, Array(CLIENTS).fill(CloseCode.ABNORMAL_CLOSURE));
    await captured.waitFor(
      /^WebSocket REJECT \/ws\/slow\/ .*\(the client left during the handshake\)$/,
    );
    // Upgraded, each would keep its descriptor for good; refused, Deno lets go of it within
    // a moment, which nothing announces: the test looks again for up to 2 s.
    let after = openDescriptors();
    for (let n = 0; n < 20 && after >= before + CLIENTS / 2; n++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = openDescriptors();
    }
    assert(after < before + CLIENTS / 2, `descriptors went from ${before} to ${after}`);
  },
});
