/**
 * `deno task start --workers 2`: two Workers serve one port (`reusePort`), joined by the
 * BroadcastChannel layer and one Deno KV file. Each answer names its Worker in
 * `x-served-by`, so the test knows where every client landed.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { diff, member, rawNextMatching, WAIT } from "./_clients.ts";
import { startServerProcess } from "./_process.ts";
import type { WebClient } from "../_support/cookie_jar.ts";
import { broadcastPrefix } from "../../server/backends.ts";
import { DEFAULT_CONFIG } from "../../server/config.ts";
import { kvPath } from "../../storage/kv_path.ts";
import { openKv } from "../../storage/kv_retry.ts";

const linux = Deno.build.os === "linux";

/** Opens sockets until at least one landed on each of the two Workers. */
async function onEachWorker(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ all: RawWebSocket[]; byWorker: Map<string, RawWebSocket> }> {
  const all: RawWebSocket[] = [];
  const byWorker = new Map<string, RawWebSocket>();
  // Linux picks the Worker by a hash of the client's port: 40 tries all on one is ~1e-12.
  for (let i = 0; i < 40 && byWorker.size < 2; i++) {
    const socket = await RawWebSocket.open(url, { headers });
    all.push(socket);
    const worker = socket.headers.get("x-served-by");
    if (worker === null) throw new Error("The handshake named no Worker");
    if (!byWorker.has(worker)) byWorker.set(worker, socket);
  }
  assertEquals(byWorker.size, 2, "every connection landed on one Worker");
  return { all, byWorker };
}

Deno.test({
  name: "with --workers 2 a chat message reaches clients on both Workers",
  ignore: !linux, // reusePort spreads connections only on Linux
  fn: async () => {
    await using server = await startServerProcess({}, ["--workers", "2"]);
    assertEquals(/workers: 2/.test(server.output()), true);
    const { all, byWorker } = await onEachWorker(server.wsUrl("/ws/chat/lobby/"));
    try {
      for (const [worker, sender] of byWorker) {
        const text = `from ${worker}`;
        await sender.send(JSON.stringify({ message: text }));
        for (const socket of all) {
          const frame = await rawNextMatching(socket, (f) => f.message === text);
          assertEquals(frame.room, "lobby");
        }
      }
    } finally {
      for (const socket of all) socket.close();
    }
  },
});

Deno.test({
  name:
    "with --workers 2 a user coming online shows on both Workers, and the session works on both",
  ignore: !linux,
  fn: async () => {
    await using server = await startServerProcess({}, ["--workers", "2"]);
    const bob = await member(server.url, "bob");
    const ada = await member(server.url, "ada");
    const presenceUrl = server.wsUrl("/ws/presence/state/");
    // bob's session, made on whichever Worker took the log-in, opens sockets on both.
    const watchers = await onEachWorker(presenceUrl, headersOf(bob, server.url));
    const adaTab = await RawWebSocket.open(presenceUrl, { headers: headersOf(ada, server.url) });
    try {
      for (const watcher of watchers.byWorker.values()) {
        await rawNextMatching(watcher, diff("joins", "ada"), WAIT);
      }
    } finally {
      adaTab.close();
      for (const socket of watchers.all) socket.close();
    }
  },
});

function headersOf(client: WebClient, origin: string): Record<string, string> {
  return { ...client.socketHeaders(), origin };
}

Deno.test({
  name: "with --workers 2 SIGTERM drains every Worker: its sockets close with 1012, a clean exit",
  ignore: !linux,
  fn: async () => {
    await using server = await startServerProcess({ DRAIN_WINDOW_MS: "1000" }, ["--workers", "2"]);
    const { all } = await onEachWorker(server.wsUrl("/ws/echo/"));
    server.signal("SIGTERM");
    for (const socket of all) assertEquals((await socket.readUntilClose()).closeCode, 1012);
    assertEquals((await server.status).code, 0);
    // Each Worker's drain lines say which Worker wrote them, and that nobody takes presence.
    const output = server.output();
    for (const worker of ["worker-1", "worker-2"]) {
      assertMatch(
        output,
        new RegExp(`INFO \\[${worker}\\] Drain: \\d+ connections? closed with 1012`),
      );
      assertMatch(output, new RegExp(`INFO \\[${worker}\\] Drain: presence left to expire`));
    }
  },
});

// A run killed (SIGKILL, a crash) leaves its Workers' registry entries in the KV file for 30 s:
// a `/roll` sent to a dead Worker's listener was answered by nobody, and told nothing.
Deno.test({
  name: "with --workers 2 a /roll is answered right after a restart that follows a crash",
  ignore: !linux,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "workers-crash-" });
    try {
      // What a killed run leaves: listeners of the dice channel in Workers that are gone.
      const path = await kvPath(dataDir);
      const kv = await openKv(path);
      const prefix = broadcastPrefix(DEFAULT_CONFIG.redisPrefix, path);
      const alive = Date.now() + 60_000;
      for (let n = 0; n < 20; n++) {
        await kv.set([prefix, "listeners", "dice", `dead-worker-${n}`], alive, {
          expireIn: 60_000,
        });
      }
      kv.close();
      await using server = await startServerProcess({ DATA_DIR: dataDir }, ["--workers", "2"]);
      const { all, byWorker } = await onEachWorker(server.wsUrl("/ws/chat/dice/"));
      try {
        for (const [worker, socket] of byWorker) {
          await socket.send(JSON.stringify({ message: "/roll 1d6", ref: worker, ack: true }));
          const answer = await rawNextMatching(socket, (f) => f.ref === worker, WAIT);
          assertEquals(answer.type, "ack", `${worker}: ${JSON.stringify(answer)}`);
        }
        assertMatch(server.output(), /Workers: 20 registry entries left by a run .* forgotten/);
      } finally {
        for (const socket of all) socket.close();
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test("a --workers server that answers any host name says so once, each Worker where it listens", async () => {
  await using server = await startServerProcess({ HOST: "0.0.0.0" }, ["--workers", "2"]);
  const output = server.output();
  // Each Worker listens before the pool says it serves the chat.
  assertEquals(
    output.match(/Listening at http:\/\/0\.0\.0\.0:\d+ \(worker-\d\)/g)?.length,
    2,
    output,
  );
  assertEquals(output.match(/page requests for any host name are answered/g)?.length, 1, output);
});
