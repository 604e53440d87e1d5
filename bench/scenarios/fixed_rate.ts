/**
 * Fixed-rate fan-out: N rooms of M clients, a fixed total message rate, and what it costs
 * each server. CPU time per delivery is the figure to trust on a shared machine.
 */
import {
  CHAT_PATH,
  type Check,
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

/** The shape of one fixed-rate scenario. */
export interface FixedRateSpec {
  name: string;
  title: string;
  rooms: number;
  perRoom: number;
  sendersPerRoom: number;
  /** Messages per second, all senders together. */
  rate: number;
  seconds: number;
  quickSeconds: number;
  messageLength: number;
}

const METRICS = [
  { key: "deliveriesPerSecond", label: "deliveries/s", digits: 0 },
  { key: "p50Ms", label: "p50 latency ms", digits: 2 },
  { key: "p99Ms", label: "p99 latency ms", digits: 2 },
  { key: "lost", label: "lost", digits: 0 },
  { key: "unsent", label: "unsent (server closed the sender)", digits: 0 },
  { key: "duplicated", label: "duplicated", digits: 0 },
  { key: "rssMiB", label: "server RSS MiB", digits: 1 },
  { key: "cpuMsPer1000", label: "server CPU ms / 1000 deliveries", digits: 2 },
  { key: "serverCpuPercent", label: "server CPU % of one core", digits: 0 },
  { key: "generatorCpuPercent", label: "generator CPU % of one core", digits: 0 },
  { key: "generatorCpuUs", label: "generator CPU µs / delivery", digits: 2 },
];

type Figures = Record<string, number>;

async function measureOnce(
  context: ScenarioContext,
  spec: FixedRateSpec,
  target: ServerTarget,
  round: number,
): Promise<Figures> {
  const { generator } = context;
  await using server = await startServerProcess(target);
  const set = setName(spec.name, target.name, round);
  const rooms = Array.from({ length: spec.rooms }, (_, i) => `${spec.name}-${round}-${i}`);
  try {
    const connected = await generator.connect({
      set,
      port: server.port,
      rooms,
      perRoom: spec.perRoom,
      mode: "read",
      pathTemplate: CHAT_PATH,
    });
    if (connected.failed > 0) {
      throw new Error(`${connected.failed} clients could not connect: ${connected.firstError}`);
    }
    await sleep(300); // the raw server adds a socket to its room on `open`, just after 101
    const before = server.sample();
    const generatorBefore = generator.sample();
    const result = await generator.traffic({
      set,
      sendersPerRoom: spec.sendersPerRoom,
      rate: spec.rate,
      durationMs: (context.options.quick ? spec.quickSeconds : spec.seconds) * 1000,
      messageLength: spec.messageLength,
      drainMs: 5000,
    });
    const after = server.sample();
    const generatorAfter = generator.sample();
    const wallMs = result.activeSeconds * 1000;
    return {
      deliveries: result.delivered,
      deliveriesPerSecond: result.delivered / result.activeSeconds,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      lost: result.lost,
      unsent: result.planned - result.sent,
      duplicated: result.duplicated,
      misrouted: result.misrouted,
      errorFrames: result.errorFrames,
      closedByServer: result.closedByServer,
      rssMiB: mib(after.rssBytes),
      cpuMs: after.cpuMs - before.cpuMs,
      cpuMsPer1000: ((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, result.delivered),
      serverCpuPercent: ((after.cpuMs - before.cpuMs) * 100) / wallMs,
      generatorCpuPercent: ((generatorAfter.cpuMs - generatorBefore.cpuMs) * 100) / wallMs,
      generatorCpuMs: generatorAfter.cpuMs - generatorBefore.cpuMs,
    };
  } finally {
    await generator.close(set).catch(() => {});
  }
}

// Counts add up over rounds; rates, latencies and memory are averaged; CPU per delivery is
// total CPU over total deliveries.
function combine(rounds: Figures[]): Figures {
  const sum = (key: string): number => rounds.reduce((total, f) => total + f[key], 0);
  const mean = (key: string): number => sum(key) / rounds.length;
  return {
    deliveriesPerSecond: mean("deliveriesPerSecond"),
    p50Ms: mean("p50Ms"),
    p99Ms: mean("p99Ms"),
    p99MsWorst: Math.max(...rounds.map((f) => f.p99Ms)),
    lost: sum("lost"),
    unsent: sum("unsent"),
    duplicated: sum("duplicated"),
    misrouted: sum("misrouted"),
    errorFrames: sum("errorFrames"),
    closedByServer: sum("closedByServer"),
    rssMiB: mean("rssMiB"),
    cpuMsPer1000: (sum("cpuMs") * 1000) / Math.max(1, sum("deliveries")),
    serverCpuPercent: mean("serverCpuPercent"),
    generatorCpuPercent: mean("generatorCpuPercent"),
    generatorCpuUs: (sum("generatorCpuMs") * 1000) / Math.max(1, sum("deliveries")),
  };
}

/**
 * The fan-out load: 1 room x 200 clients, 5 senders, 100 messages/s (20,000
 * deliveries/s). Shared by the raw-vs-ours and the scale-out scenarios so their figures compare.
 */
export const FANOUT_LOAD: Omit<FixedRateSpec, "name" | "title"> = {
  rooms: 1,
  perRoom: 200,
  sendersPerRoom: 5,
  rate: 100,
  seconds: 10,
  quickSeconds: 3,
  messageLength: 100,
};

/** A scenario that runs `spec` against every target, alternating them round by round. */
export function fixedRateScenario(spec: FixedRateSpec): Scenario {
  return {
    name: spec.name,
    title: spec.title,
    async run(context: ScenarioContext): Promise<ScenarioResult> {
      const perServer = new Map<string, Figures[]>();
      const rounds = context.options.rounds;
      for (let round = 0; round < rounds; round++) {
        for (const target of roundOrder(context.targets, round)) {
          context.log(`${spec.name}: ${target.name}, round ${round + 1} of ${rounds}`);
          const figures = await measureOnce(context, spec, target, round);
          if (!perServer.has(target.name)) perServer.set(target.name, []);
          perServer.get(target.name)!.push(figures);
        }
      }
      const figures: Record<string, Figures> = {};
      for (const [name, list] of perServer) figures[name] = combine(list);
      const result = { name: spec.name, figures };
      const subject = context.targets[1];
      const checks: Check[] = [
        ratioCheck(result, context.targets, {
          name: "CPU per delivery",
          metric: "cpuMsPer1000",
          comparison: "<=",
          limit: 1.25,
        }),
        ratioCheck(result, context.targets, {
          name: "p99 latency",
          metric: "p99Ms",
          comparison: "<=",
          limit: 1.25,
        }),
      ];
      if (subject !== undefined) {
        const { lost: missed, unsent, duplicated } = figures[subject.name];
        const lost = missed + unsent + duplicated;
        checks.push({
          name: `${subject.name}: lost, unsent or duplicated messages`,
          scenario: spec.name,
          value: lost,
          comparison: "<=",
          limit: 0,
          pass: lost === 0,
        });
      }
      return {
        name: spec.name,
        title: spec.title,
        metrics: METRICS,
        figures,
        checks,
        notes: [
          `${spec.rooms} room(s) x ${spec.perRoom} clients, ${spec.sendersPerRoom} sender(s) ` +
          `per room, ${spec.rate} messages/s in total, ${rounds} round(s) per server`,
        ],
      };
    },
  };
}
