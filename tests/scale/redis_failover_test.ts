/**
 * A Redis failover under live chat: two server processes on a master with one replica and three
 * Sentinels (`REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`). The master is killed with SIGKILL
 * while one client chats to another; the Sentinels promote the replica. Neither server
 * restarts, messages flow again within 10 s, and every message is either delivered or its
 * sender got an error frame for it.
 */
import { assert, assertEquals } from "@std/assert";
import { TestSocket } from "../_support/socket.ts";
import { requireTopologies, startRedisSentinel } from "../_support/redis_topologies.ts";
import { startServerProcess } from "./_process.ts";

const available = await requireTopologies();

Deno.test({
  name:
    "a Redis master killed while clients chat: back within 10 s, no restart, nothing lost untold",
  ignore: !available,
  fn: async () => {
    await using topology = await startRedisSentinel();
    if (topology.form.kind !== "sentinel") throw new Error("not a sentinel form");
    const env = {
      LAYER: "redis",
      REDIS_PREFIX: "failover",
      REDIS_SENTINELS: topology.form.sentinels.map((s) => `${s.host}:${s.port}`).join(","),
      REDIS_SENTINEL_MASTER: topology.form.masterName,
      // 50 messages a second: above the default per-socket rate limit, whose refusals carry no ref.
      RATE_LIMIT: "1000",
      RATE_BURST: "1000",
    };
    await using a = await startServerProcess(env);
    await using b = await startServerProcess(env);
    const sender = await TestSocket.open(a.wsUrl("/ws/chat/lobby/"));
    const receiver = await TestSocket.open(b.wsUrl("/ws/chat/lobby/"));
    const delivered = new Set<number>();
    const refused = new Set<number>();
    const stop = { now: false };
    const reading = Promise.all([
      collect(receiver, stop, (frame) => {
        const n = /^m(\d+)$/.exec(String(frame.message))?.[1];
        if (n !== undefined) delivered.add(Number(n));
      }),
      collect(sender, stop, (frame) => {
        if (frame.type === "error" && typeof frame.ref === "number") refused.add(frame.ref);
      }),
    ]);
    let killedAt = 0;
    let backAt = 0;
    let sent = 0;
    try {
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline && (backAt === 0 || sent < killedAfter + 100)) {
        const n = sent++;
        sender.sendJson({ message: `m${n}`, ref: n });
        if (n === killedAfter) {
          killedAt = Date.now();
          await topology.killMaster();
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        const lastDelivered = Math.max(-1, ...delivered);
        if (killedAt > 0 && backAt === 0 && lastDelivered > killedAfter) backAt = Date.now();
      }
      // On failure, what both servers logged says which side did not find the new master.
      assert(
        backAt > 0,
        "no message crossed between the processes after the failover\n" +
          `A:\n${a.output().split("\n").slice(-15).join("\n")}\n` +
          `B:\n${b.output().split("\n").slice(-15).join("\n")}`,
      );
      assert(
        backAt - killedAt < 10_000,
        `messages flowed again only after ${backAt - killedAt} ms`,
      );
      // Sends that waited for the old master get their error frame ("not confirmed") when its
      // connection drops, or once their timeout (3 s) ends.
      const untoldOnes = () =>
        [...Array(sent).keys()].filter((n) => !delivered.has(n) && !refused.has(n));
      await settle(() => untoldOnes().length === 0, 10_000);
      const untold = untoldOnes();
      assertEquals(untold, [], "every message is delivered, or its sender was told");
      assertEquals(receiver.socket.readyState, WebSocket.OPEN, "clients stayed connected");
      assertEquals(a.output().includes("Serving the chat"), true);
      console.log(
        `failover: back after ${backAt - killedAt} ms; ${sent} sent, ${delivered.size} ` +
          `delivered, ${refused.size} refused with an error frame`,
      );
    } finally {
      stop.now = true;
      await reading;
      await sender.close();
      await receiver.close();
    }
    // Neither server restarted: each still has the pid and listener it started with.
    const page = await fetch(`${b.url}/chat/`);
    await page.body?.cancel();
    assertEquals(page.status, 200);
  },
});

const killedAfter = 20;

async function collect(
  socket: TestSocket,
  stop: { now: boolean },
  onFrame: (frame: Record<string, unknown>) => void,
): Promise<void> {
  while (!stop.now) {
    const frame = await socket.nextJson(200).catch(() => null);
    if (frame !== null) onFrame(frame);
  }
}

async function settle(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
