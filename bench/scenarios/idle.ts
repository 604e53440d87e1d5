/**
 * Idle connections: what one open, quiet socket costs a server in resident memory, measured
 * as (RSS with N sockets - RSS before) / N on a fresh server after a short warm-up.
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
    const figures: Record<string, Record<string, number>> = {};
    for (const target of roundOrder(context.targets, 0)) {
      context.log(`idle: ${target.name}`);
      figures[target.name] = await measure(context, target, 0);
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
      ],
    };
  },
};
