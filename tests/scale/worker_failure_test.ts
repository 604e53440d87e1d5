/**
 * `--workers 2`, one of which fails: it throws, or its event loop blocks for good. The process
 * exits with code 1, so a supervisor restarts it, but first the other Worker drains (its clients
 * get 1012 and reconnect) and the parent writes the streams, so nothing sent before is lost.
 */
import { assertEquals } from "@std/assert";
import { TestSocket } from "../_support/socket.ts";
import { onWorker, rawNextMatching, rawSendAll, WAIT } from "./_clients.ts";
import { startServerProcess } from "./_process.ts";

const FAULTY_MAIN = new URL("../fixtures/workers/faulty_main.ts", import.meta.url).pathname;
const ROOM = "/ws/chat/lobby/";
const FAST = { RATE_LIMIT: "10000", RATE_BURST: "10000" };
const linux = Deno.build.os === "linux";

for (const fault of ["throw", "hang"] as const) {
  Deno.test({
    name: `with --workers 2 a Worker that ${fault}s: the other drains with 1012, the streams ` +
      "are written, and the process exits with code 1",
    ignore: !linux, // reusePort spreads connections only on Linux
    fn: async () => {
      const dataDir = await Deno.makeTempDir({ prefix: "worker-failure-" });
      const faultDir = await Deno.makeTempDir({ prefix: "worker-fault-" });
      try {
        const env = { ...FAST, DATA_DIR: dataDir };
        let position: Record<string, unknown>;
        {
          await using server = await startServerProcess(
            { ...env, FAULT_DIR: faultDir, TEST_HANG_MS: "2000" },
            ["--workers", "2"],
            { main: FAULTY_MAIN },
          );
          const { socket: client } = await onWorker(server, `${ROOM}?stream=1`, () => true);
          position = await rawNextMatching(client, (f) => f.type === "recovered");
          client.close();
          const { socket: survivor } = await onWorker(server, ROOM, (w) => w === "worker-1");
          // Answered, so in the parent's sequencer; written to Deno KV only every 2 s.
          await rawSendAll(survivor, 20, "before");
          await Deno.writeTextFile(`${faultDir}/${fault}`, "");
          await server.waitForOutput(/Worker worker-2 failed: .*; stopping/, WAIT);
          assertEquals((await survivor.readUntilClose()).closeCode, 1012);
          assertEquals((await server.status).code, 1);
        }
        await using again = await startServerProcess(env, ["--workers", "2"]);
        const back = await TestSocket.open(
          again.wsUrl(`${ROOM}?epoch=${position.epoch}&since=${position.offset}`),
        );
        assertEquals(await back.nextJson(WAIT), {
          type: "recovered",
          complete: true,
          epoch: position.epoch,
          offset: (position.offset as number) + 20,
        });
        const messages = [];
        while (messages.length < 20) messages.push((await back.nextJson(WAIT)).message);
        assertEquals(messages, Array.from({ length: 20 }, (_, i) => `before ${i + 1}`));
        await back.close();
      } finally {
        await Deno.remove(dataDir, { recursive: true });
        await Deno.remove(faultDir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "with --workers 2 a SIGTERM while the pool stops after a Worker failed still exits with code 1",
  ignore: !linux,
  fn: async () => {
    const faultDir = await Deno.makeTempDir({ prefix: "worker-fault-" });
    try {
      await using server = await startServerProcess(
        { ...FAST, FAULT_DIR: faultDir },
        ["--workers", "2"],
        { main: FAULTY_MAIN },
      );
      // A client on the Worker that stays, so its drain takes a close handshake.
      const { socket } = await onWorker(server, ROOM, (w) => w === "worker-1");
      await Deno.writeTextFile(`${faultDir}/throw`, "");
      await server.waitForOutput(/Worker worker-2 failed: .*; stopping/, WAIT);
      server.signal("SIGTERM"); // a deploy's stop, at the same moment
      assertEquals((await server.status).code, 1);
      socket.close();
    } finally {
      await Deno.remove(faultDir, { recursive: true });
    }
  },
});
