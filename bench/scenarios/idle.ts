/**
 * Idle connections: what one open, quiet socket costs a server in resident memory, measured
 * as (RSS with N sockets - RSS before) / N on a fresh server after a short warm-up.
 *
 * RSS moves in steps (V8 grows its heap by several MiB at a time), so one round can read a
 * step more or less than the next for the same code: before `deno task start` capped V8's young
 * generation, ours read 23 KB or 33 KB per socket by chance. Each server therefore runs `--rounds` rounds (a fresh process
 * each), and the round with its median figure is the one reported; every round is listed.
 */
import {
  CHAT_PATH,
  mib,
  ratioCheck,
  roundOrder,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  setName,
  sleep,
} from "../_scenario.ts";
import { type ServerTarget, startServerProcess } from "../_servers.ts";

const SOCKETS = 2000;
const QUICK_SOCKETS = 500;
const PER_ROOM = 20;
const SETTLE_MS = 2000;

async function measure(
  context: ScenarioContext,
  target: ServerTarget,
  round: number,
): Promise<Record<string, number>> {
  const { generator } = context;
  const sockets = context.options.quick ? QUICK_SOCKETS : SOCKETS;
  const rooms = Array.from({ length: sockets / PER_ROOM }, (_, i) => `idle-${round}-${i}`);
  await using server = await startServerProcess(target);
  const warmup = setName("idle-warmup", target.name, round);
  const set = setName("idle", target.name, round);
  try {
    // A first wave of as many sockets stays open: the one-time costs of a burst of handshakes
    // (code, and above all V8's young generation growing with the allocation rate, several
    // MiB that stay resident) are paid before "before", and closed sockets are not in play
    // (Deno keeps a closed socket's objects until its 15 s ping timer fires). The figure is
    // the steady cost of one more open socket.
    await generator.connect({
      set: warmup,
      port: server.port,
      rooms: rooms.map((room) => `${room}-first`),
      perRoom: PER_ROOM,
      mode: "read",
      pathTemplate: CHAT_PATH,
      timedEvery: 1, // Deno sockets, as a server's idle clients would be: no reads to pace
    });
    await sleep(SETTLE_MS);
    const before = server.sample();
    const connected = await generator.connect({
      set,
      port: server.port,
      rooms,
      perRoom: PER_ROOM,
      mode: "read",
      pathTemplate: CHAT_PATH,
      timedEvery: 1, // Deno sockets, as a server's idle clients would be: no reads to pace
    });
    if (connected.failed > 0) {
      throw new Error(`${connected.failed} sockets could not connect: ${connected.firstError}`);
    }
    await sleep(SETTLE_MS);
    const after = server.sample();
    return {
      sockets: connected.connected,
      rssBeforeMiB: mib(before.rssBytes),
      rssAfterMiB: mib(after.rssBytes),
      bytesPerSocket: (after.rssBytes - before.rssBytes) / connected.connected,
      connectSeconds: connected.seconds,
    };
  } finally {
    await generator.close(set).catch(() => {});
    await generator.close(warmup).catch(() => {});
  }
}

/** The idle-connections scenario. */
export const idleScenario: Scenario = {
  name: "idle",
  title: "Idle connections: server memory per open socket",
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const rounds: Record<string, Record<string, number>[]> = {};
    for (let round = 0; round < context.options.rounds; round++) {
      for (const target of roundOrder(context.targets, round)) {
        context.log(`idle: ${target.name}, round ${round + 1}`);
        (rounds[target.name] ??= []).push(await measure(context, target, round));
      }
    }
    const figures: Record<string, Record<string, number>> = {};
    for (const [name, measured] of Object.entries(rounds)) {
      const sorted = [...measured].sort((a, b) => a.bytesPerSocket - b.bytesPerSocket);
      figures[name] = sorted[(sorted.length - 1) >> 1];
    }
    const result = { name: "idle", figures };
    return {
      name: "idle",
      title: this.title,
      metrics: [
        { key: "sockets", label: "sockets", digits: 0 },
        { key: "rssBeforeMiB", label: "server RSS before, MiB", digits: 1 },
        { key: "rssAfterMiB", label: "server RSS after, MiB", digits: 1 },
        { key: "bytesPerSocket", label: "RSS bytes per socket", digits: 0 },
        { key: "connectSeconds", label: "seconds to open them all", digits: 1 },
      ],
      figures,
      checks: [ratioCheck(result, context.targets, {
        name: "memory per idle connection",
        metric: "bytesPerSocket",
        comparison: "<=",
        limit: 1.15,
      })],
      notes: [
        `${PER_ROOM} sockets per room; a first wave of as many sockets stays open during the ` +
        `measurement; RSS read ${SETTLE_MS} ms after the last socket opened`,
        `${context.options.rounds} round(s) per server, each a fresh process; the median ` +
        `round is shown. RSS bytes per socket, every round: ` +
        Object.entries(rounds).map(([name, measured]) =>
          `${name} ${measured.map((m) => Math.round(m.bytesPerSocket)).join(", ")}`
        ).join("; "),
      ],
    };
  },
};
