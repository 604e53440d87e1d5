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
import { type ServerProcess, type ServerTarget, startServerProcess } from "../_servers.ts";
import { LoadGenerator } from "../_generator.ts";
import type { ProcSample } from "../_proc.ts";
import { probeOffset } from "../_recovery_client.ts";
import { oursOnRedis, startBenchRedis } from "./_bench_redis.ts";

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
  /**
   * Traffic at the same rate before the measured seconds, on every server at once: a server
   * just started runs its code unoptimised until V8 has compiled it, and that warm-up costs a
   * server with more code more. Its p99 is reported, not checked.
   */
  warmUpSeconds: number;
  messageLength: number;
  /**
   * Measure every server at the same time, each loaded by its own generator process, instead
   * of one after another: then a change in the machine's load (another process, the CPU's
   * clock) reaches both alike, and the ratios stop moving with it.
   */
  paired?: boolean;
  /** The target for ours' CPU per delivery, times raw's (default 1.25). */
  cpuLimit?: number;
  /**
   * Ours runs on the Redis layer, on a redis-server the scenario starts, and its CPU and memory
   * are counted together with that redis-server's. Its p99 is then reported, not checked.
   */
  redis?: boolean;
  /**
   * The framework alone: clients join the group chat by URL (`/ws/<group>/`), which relays each
   * text frame unchanged to the group, and raw Deno relays the same way. No offsets, no history:
   * the figure says what the framework costs apart from the chat's delivery guarantees. Its
   * ratios are reported, not checked (the issue sets no target for it).
   */
  relay?: boolean;
  /**
   * With `redis`: ours holds its scripts up to this many ms to share round trips with the next
   * ones (`REDIS_LINGER_MS`) instead of its default; 0 turns the linger off. Not the default
   * configuration: its ratios are reported, not checked.
   */
  redisLingerMs?: number;
}

// A relayed group's name is word characters only.
function roomName(spec: FixedRateSpec, round: number, room: number): string {
  const name = `${spec.name}-${round}-${room}`;
  return spec.relay ? name.replace(/\W/g, "_") : name;
}

/** The group chat by URL: each text frame relayed unchanged to its group. */
const RELAY_PATH = "/ws/{room}/";

/** The issue's targets for ours' CPU per delivery against raw's. */
export const CPU_LIMIT = { rooms: 1.25, fanout: 1.15, redis: 2.0 };

const METRICS = [
  { key: "deliveriesPerSecond", label: "deliveries/s", digits: 0 },
  { key: "p50Ms", label: "p50 latency ms", digits: 2 },
  { key: "p99Ms", label: "p99 latency ms", digits: 2 },
  { key: "warmUpP99Ms", label: "p99 ms while warming up (not checked)", digits: 2 },
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

const QUICK_WARM_UP_SECONDS = 1;

/**
 * Runs the load against every target in `targets` at once, each with its own clients from
 * the generator at the same index, and returns each one's figures. Sequential rounds pass one
 * target; a paired round passes them all.
 */
async function measure(
  context: ScenarioContext,
  spec: FixedRateSpec,
  targets: ServerTarget[],
  generators: LoadGenerator[],
  round: number,
  companions: Map<string, () => ProcSample>,
): Promise<Figures[]> {
  const servers: ServerProcess[] = [];
  const sets: string[] = [];
  // The CPU of a server's redis-server alone, where it has one (0 otherwise).
  const companionCpu = (i: number): number => companions.get(targets[i].name)?.().cpuMs ?? 0;
  // A server's CPU and memory, with its redis-server's where it has one.
  const sample = (i: number): ProcSample => {
    const own = servers[i].sample();
    const companion = companions.get(targets[i].name)?.();
    return companion === undefined ? own : {
      cpuMs: own.cpuMs + companion.cpuMs,
      rssBytes: own.rssBytes + companion.rssBytes,
      peakBytes: own.peakBytes + companion.peakBytes,
    };
  };
  try {
    for (const [i, target] of targets.entries()) {
      const server = await startServerProcess(target);
      servers.push(server);
      // Ours (not the baseline) must send each chat frame with its offset in the room's stream.
      if (target !== context.targets[0] && !spec.relay) {
        const offset = await probeOffset(server.port, `${spec.name}-${round}-offset-probe`);
        if (typeof offset !== "number") {
          throw new Error(`${target.name}: a chat frame came without its "offset"`);
        }
      }
      const set = setName(spec.name, target.name, round);
      const connected = await generators[i].connect({
        set,
        port: server.port,
        rooms: Array.from({ length: spec.rooms }, (_, r) => roomName(spec, round, r)),
        perRoom: spec.perRoom,
        mode: "read",
        pathTemplate: spec.relay ? RELAY_PATH : CHAT_PATH,
      });
      sets.push(set);
      if (connected.failed > 0) {
        throw new Error(`${connected.failed} clients could not connect: ${connected.firstError}`);
      }
    }
    await sleep(300); // the raw server adds a socket to its room on `open`, just after 101
    const traffic = (seconds: number) =>
      Promise.all(targets.map((_, i) =>
        generators[i].traffic({
          set: sets[i],
          sendersPerRoom: spec.sendersPerRoom,
          rate: spec.rate,
          durationMs: seconds * 1000,
          messageLength: spec.messageLength,
          drainMs: 5000,
        })
      ));
    const warmUps = await traffic(
      context.options.quick ? QUICK_WARM_UP_SECONDS : spec.warmUpSeconds,
    );
    const before = servers.map((_, i) => sample(i));
    const companionsBefore = servers.map((_, i) => companionCpu(i));
    const generatorsBefore = generators.map((generator) => generator.sample());
    const results = await traffic(context.options.quick ? spec.quickSeconds : spec.seconds);
    return results.map((result, i) => {
      const after = sample(i);
      const generatorAfter = generators[i].sample();
      const wallMs = result.activeSeconds * 1000;
      const cpuMs = after.cpuMs - before[i].cpuMs;
      const companionCpuMs = companionCpu(i) - companionsBefore[i];
      const generatorCpuMs = generatorAfter.cpuMs - generatorsBefore[i].cpuMs;
      return {
        deliveries: result.delivered,
        deliveriesPerSecond: result.delivered / result.activeSeconds,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        warmUpP99Ms: warmUps[i].latency.p99,
        // Messages of the warm-up count too: zero loss means every message of the round.
        lost: result.lost + warmUps[i].lost,
        unsent: result.planned - result.sent + warmUps[i].planned - warmUps[i].sent,
        duplicated: result.duplicated + warmUps[i].duplicated,
        misrouted: result.misrouted + warmUps[i].misrouted,
        errorFrames: result.errorFrames + warmUps[i].errorFrames,
        closedByServer: result.closedByServer,
        rssMiB: mib(after.rssBytes),
        cpuMs,
        cpuMsPer1000: (cpuMs * 1000) / Math.max(1, result.delivered),
        companionCpuMs,
        serverCpuPercent: (cpuMs * 100) / wallMs,
        generatorCpuPercent: (generatorCpuMs * 100) / wallMs,
        generatorCpuMs,
      };
    });
  } finally {
    for (const [i, set] of sets.entries()) await generators[i].close(set).catch(() => {});
    for (const server of servers) await server.stop();
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
    warmUpP99Ms: mean("warmUpP99Ms"),
    lost: sum("lost"),
    unsent: sum("unsent"),
    duplicated: sum("duplicated"),
    misrouted: sum("misrouted"),
    errorFrames: sum("errorFrames"),
    closedByServer: sum("closedByServer"),
    rssMiB: mean("rssMiB"),
    cpuMsPer1000: (sum("cpuMs") * 1000) / Math.max(1, sum("deliveries")),
    redisCpuMsPer1000: (sum("companionCpuMs") * 1000) / Math.max(1, sum("deliveries")),
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
  warmUpSeconds: 3,
  messageLength: 100,
};

/** The rooms load: 50 rooms x 10 clients, one sender per room, 500 messages/s in all. */
export const ROOMS_LOAD: Omit<FixedRateSpec, "name" | "title"> = {
  rooms: 50,
  perRoom: 10,
  sendersPerRoom: 1,
  rate: 500,
  seconds: 10,
  quickSeconds: 3,
  warmUpSeconds: 3,
  messageLength: 100,
};

/**
 * A scenario that runs `spec` against every target: all at once each round when `paired`,
 * otherwise one after another, alternating their order round by round.
 */
export function fixedRateScenario(spec: FixedRateSpec): Scenario {
  return {
    name: spec.name,
    title: spec.title,
    async run(outer: ScenarioContext): Promise<ScenarioResult> {
      // On Redis: ours is the Redis form, and its redis-server's CPU counts as its own.
      await using redis = spec.redis ? await startBenchRedis() : null;
      const companions = new Map<string, () => ProcSample>();
      const context = { ...outer };
      if (redis !== null) {
        const ours = oursOnRedis(
          spec.redisLingerMs === undefined
            ? "ours-redis"
            : spec.redisLingerMs === 0
            ? "ours-redis-no-linger"
            : `ours-redis-linger-${spec.redisLingerMs}`,
          redis,
          `bench-${spec.name}`,
          spec.redisLingerMs,
        );
        context.targets = [outer.targets[0], ours];
        companions.set(ours.name, () => redis.sample());
      }
      const perServer = new Map<string, Figures[]>();
      const record = (target: ServerTarget, figures: Figures): void => {
        if (!perServer.has(target.name)) perServer.set(target.name, []);
        perServer.get(target.name)!.push(figures);
      };
      const rounds = context.options.rounds;
      // A paired round gives every target but the first a generator of its own.
      await using extra = new AsyncDisposableStack();
      const generators = [context.generator];
      if (spec.paired) {
        for (let i = 1; i < context.targets.length; i++) {
          generators.push(extra.use(LoadGenerator.start()));
        }
      }
      for (let round = 0; round < rounds; round++) {
        if (spec.paired) {
          context.log(`${spec.name}: every server at once, round ${round + 1} of ${rounds}`);
          const figures = await measure(
            context,
            spec,
            context.targets,
            generators,
            round,
            companions,
          );
          context.targets.forEach((target, i) => record(target, figures[i]));
          continue;
        }
        for (const target of roundOrder(context.targets, round)) {
          context.log(`${spec.name}: ${target.name}, round ${round + 1} of ${rounds}`);
          const [figures] = await measure(context, spec, [target], generators, round, companions);
          record(target, figures);
        }
      }
      const figures: Record<string, Figures> = {};
      for (const [name, list] of perServer) figures[name] = combine(list);
      const result = { name: spec.name, figures };
      const subject = context.targets[1];
      const checks: Check[] = [
        {
          ...ratioCheck(result, context.targets, {
            name: redis !== null ? "CPU per delivery, with its redis-server's" : "CPU per delivery",
            metric: "cpuMsPer1000",
            comparison: "<=",
            limit: spec.cpuLimit ?? CPU_LIMIT.rooms,
          }),
          ...(spec.relay || spec.redisLingerMs !== undefined ? { reported: true } : {}),
        },
        {
          ...ratioCheck(result, context.targets, {
            name: "p99 latency",
            metric: "p99Ms",
            comparison: "<=",
            limit: 1.25,
          }),
          ...(redis !== null || spec.relay ? { reported: true } : {}),
        },
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
        metrics: redis === null ? METRICS : [...METRICS, {
          key: "redisCpuMsPer1000",
          label: "of which its redis-server, CPU ms / 1000 deliveries",
          digits: 2,
        }],
        figures,
        checks,
        ...(redis !== null ? { servers: context.targets.map((target) => target.name) } : {}),
        notes: [
          `${spec.rooms} room(s) x ${spec.perRoom} clients, ${spec.sendersPerRoom} sender(s) ` +
          `per room, ${spec.rate} messages/s in total, ${rounds} round(s) per server` +
          (spec.paired ? ", every server at once, each with its own generator" : ""),
          ...(redis !== null ? context.targets[1].notes : []),
          spec.relay
            ? "both relay each client's text frame unchanged to its group (/ws/<group>/): " +
              "the framework's connection, limits, meters and group layer, without the chat's " +
              "offsets, history or JSON; reported, not checked"
            : `ours' chat frames carry their "offset" in the room's stream (checked each round)`,
          ...[...perServer].map(([name, list]) =>
            `${name} per round (CPU ms / 1000 deliveries, p99 ms): ` +
            list.map((f) => `${f.cpuMsPer1000.toFixed(2)} ${f.p99Ms.toFixed(2)}`).join(", ")
          ),
        ],
      };
    },
  };
}
