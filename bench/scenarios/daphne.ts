/**
 * Against Django Channels: the Channels tutorial's async `ChatConsumer` under Daphne with
 * channels_redis' core layer (`tests/fixtures/django_chat/`), this server with
 * `LAYER=channels_redis` (the same groups on Redis) and with `LAYER=redis` (its own format),
 * each with a private redis-server. The figure is CPU per delivery of the server's process
 * tree plus its redis-server, in fan-out and in rooms. Target: the channels_redis layer at
 * most 0.5x Daphne's.
 *
 * Daphne is one Python thread. For each shape the standard load is tried first, then lighter
 * ones (fewer messages per second, the same clients), and the highest at which Daphne loses
 * nothing is the load all three servers run, one after another, in turn (ABC, CBA...).
 *
 * The tutorial's consumer answers `{"message": text}` and nothing else: the generator's
 * marker (run, room, sequence number, send time) travels inside the text, so loss,
 * duplicates and latency are counted the same way on every server. Room names are `\w+`, as
 * the tutorial's URL pattern requires.
 */
import {
  CHAT_PATH,
  type Check,
  mib,
  ratio,
  roundOrder,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  setName,
  sleep,
} from "../_scenario.ts";
import { OURS, type ServerTarget, startServerProcess } from "../_servers.ts";
import { DAPHNE } from "../_daphne.ts";
import { FANOUT_LOAD, type FixedRateSpec, ROOMS_LOAD } from "./fixed_rate.ts";
import { startBenchRedis } from "./_bench_redis.ts";
import { djangoUnavailable } from "../../tests/interop/_django.ts";

/** A shape of load: the clients stay, the rate steps down until Daphne keeps up. */
interface Shape {
  key: string;
  label: string;
  /** The standard load: clients, rate, message length and seconds. */
  load: StandardLoad;
  /** Messages per second: the standard load first, then lighter ones. */
  rates: number[];
}

type StandardLoad = Omit<FixedRateSpec, "name" | "title">;

/** Fractions of the standard rate tried, highest first. */
const STEPS = [1, 1 / 2, 1 / 4, 1 / 10, 1 / 20];

function shapeOf(key: string, label: string, load: StandardLoad): Shape {
  return { key, label, load, rates: STEPS.map((step) => Math.round(load.rate * step)) };
}

/** The `fanout` and `rooms` scenarios' loads. */
const SHAPES: Shape[] = [
  shapeOf("fanout", "fan-out", FANOUT_LOAD),
  shapeOf("rooms", "rooms", ROOMS_LOAD),
];

const DRAIN_MS = 5000;
const QUICK_WARM_UP_SECONDS = 1;

/** Seconds of warm-up traffic, then of measured traffic. */
interface Timing {
  warmUpSeconds: number;
  seconds: number;
}

function ours(layer: "channels_redis" | "redis"): ServerTarget {
  return {
    ...OURS,
    name: `ours-${layer}`,
    env: { ...OURS.env, LAYER: layer, REDIS_PREFIX: "bench" },
    notes: [`ours-${layer}: as ours, with LAYER=${layer} on its own redis-server`],
  };
}

const TARGETS = [DAPHNE, ours("channels_redis"), ours("redis")];
const [, SUBJECT, OWN_FORMAT] = TARGETS.map((target) => target.name);

type Figures = Record<string, number>;

/**
 * Starts a redis-server and `target` on it, opens the shape's clients, runs a warm-up and
 * then the measured traffic at `rate`, and returns what the server and its Redis spent.
 */
async function measure(
  context: ScenarioContext,
  target: ServerTarget,
  shape: Shape,
  rate: number,
  timing: Timing,
): Promise<Figures> {
  await using redis = await startBenchRedis();
  const redisCpu = (): number => redis.sample().cpuMs;
  await using server = await startServerProcess(target, { env: { REDIS_URL: redis.url } });
  const set = setName(`daphne-${shape.key}`, target.name, 0);
  try {
    const connected = await context.generator.connect({
      set,
      port: server.port,
      rooms: Array.from({ length: shape.load.rooms }, (_, r) => `${shape.key}${r}`),
      perRoom: shape.load.perRoom,
      mode: "read",
      pathTemplate: CHAT_PATH,
    });
    if (connected.failed > 0) {
      throw new Error(
        `${target.name}: ${connected.failed} clients could not connect: ${connected.firstError}`,
      );
    }
    await sleep(300);
    const traffic = (seconds: number) =>
      context.generator.traffic({
        set,
        sendersPerRoom: shape.load.sendersPerRoom,
        rate,
        durationMs: seconds * 1000,
        messageLength: shape.load.messageLength,
        drainMs: DRAIN_MS,
      });
    const warmUp = await traffic(timing.warmUpSeconds);
    const [serverBefore, redisBefore] = [server.sample().cpuMs, redisCpu()];
    const result = await traffic(timing.seconds);
    const after = server.sample();
    return {
      rate,
      deliveries: result.delivered,
      deliveriesPerSecond: result.delivered / result.activeSeconds,
      wallMs: result.activeSeconds * 1000,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      lost: result.lost + warmUp.lost,
      unsent: result.planned - result.sent + warmUp.planned - warmUp.sent,
      duplicated: result.duplicated + warmUp.duplicated,
      misrouted: result.misrouted + warmUp.misrouted,
      serverCpuMs: after.cpuMs - serverBefore,
      redisCpuMs: redisCpu() - redisBefore,
      rssMiB: mib(after.rssBytes),
    };
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${server.output()}`);
  } finally {
    await context.generator.close(set).catch(() => {});
  }
}

function failures(figures: Figures): number {
  return figures.lost + figures.unsent + figures.duplicated + figures.misrouted;
}

interface Choice {
  rate: number;
  note: string;
  /** Daphne's figures at `rate` from the try that chose it: its first round. */
  figures: Figures | null;
}

/**
 * The highest rate of `shape` at which Daphne loses nothing in a round as long as the measured
 * ones, and what each try gave.
 */
async function chooseRate(
  context: ScenarioContext,
  shape: Shape,
  timing: Timing,
): Promise<Choice> {
  const tried: string[] = [];
  for (const rate of shape.rates) {
    context.log(`daphne: ${shape.label}, does Daphne lose nothing at ${rate} messages/s?`);
    const figures = await measure(context, DAPHNE, shape, rate, timing);
    const outcome = failures(figures) === 0
      ? "nothing lost"
      : `${figures.lost} deliveries lost, ${figures.unsent} unsent, ` +
        `${figures.duplicated + figures.misrouted} duplicated or misrouted`;
    tried.push(
      `${rate}/s: ${outcome} (Daphne at ${
        ((figures.serverCpuMs * 100) / figures.wallMs).toFixed(0)
      }% of a core, ${(figures.deliveries * 1000 / figures.wallMs).toFixed(0)} deliveries/s of ${
        rate * shape.load.perRoom
      } due, p99 ${figures.p99Ms.toFixed(0)} ms)`,
    );
    if (failures(figures) === 0) {
      const note = `${shape.label}: load chosen as the highest of ${
        shape.rates.join(", ")
      } messages/s at which Daphne loses nothing: ${tried.join("; ")}`;
      return { rate, note, figures };
    }
  }
  const rate = shape.rates[shape.rates.length - 1];
  return {
    rate,
    note: `${shape.label}: Daphne lost messages at every load tried (${tried.join("; ")}); ` +
      `measured at the lightest, ${rate}/s`,
    figures: null,
  };
}

// Counts and CPU add up over rounds; latencies and memory are averaged.
function combine(rounds: Figures[]): Figures {
  const sum = (key: string): number => rounds.reduce((total, f) => total + f[key], 0);
  const deliveries = Math.max(1, sum("deliveries"));
  return {
    rate: rounds[0].rate,
    deliveriesPerSecond: sum("deliveries") * 1000 / sum("wallMs"),
    p50Ms: sum("p50Ms") / rounds.length,
    p99Ms: sum("p99Ms") / rounds.length,
    lost: sum("lost"),
    unsent: sum("unsent"),
    duplicated: sum("duplicated") + sum("misrouted"),
    cpuMsPer1000: ((sum("serverCpuMs") + sum("redisCpuMs")) * 1000) / deliveries,
    serverCpuMsPer1000: (sum("serverCpuMs") * 1000) / deliveries,
    redisCpuMsPer1000: (sum("redisCpuMs") * 1000) / deliveries,
    serverCpuPercent: (sum("serverCpuMs") * 100) / sum("wallMs"),
    redisCpuPercent: (sum("redisCpuMs") * 100) / sum("wallMs"),
    rssMiB: sum("rssMiB") / rounds.length,
  };
}

const SHAPE_METRICS = [
  { key: "rate", label: "messages/s (load used)", digits: 0 },
  { key: "deliveriesPerSecond", label: "deliveries/s", digits: 0 },
  { key: "cpuMsPer1000", label: "CPU ms / 1000 deliveries, server + redis", digits: 2 },
  { key: "serverCpuMsPer1000", label: "server CPU ms / 1000 deliveries", digits: 2 },
  { key: "redisCpuMsPer1000", label: "redis-server CPU ms / 1000 deliveries", digits: 2 },
  { key: "serverCpuPercent", label: "server CPU % of one core", digits: 0 },
  { key: "redisCpuPercent", label: "redis-server CPU % of one core", digits: 0 },
  { key: "p50Ms", label: "p50 latency ms", digits: 2 },
  { key: "p99Ms", label: "p99 latency ms", digits: 2 },
  { key: "lost", label: "lost", digits: 0 },
  { key: "unsent", label: "unsent (server closed the sender)", digits: 0 },
  { key: "duplicated", label: "duplicated or misrouted", digits: 0 },
  { key: "rssMiB", label: "server RSS MiB", digits: 1 },
];

function lossCheck(shape: Shape, name: string, figures: Figures, reported: boolean): Check {
  const value = figures.lost + figures.unsent + figures.duplicated;
  return {
    name: `${shape.label}: ${name}: lost, unsent or duplicated messages`,
    scenario: "daphne",
    value,
    comparison: "<=",
    limit: 0,
    pass: value === 0,
    ...(reported ? { reported: true } : {}),
  };
}

function shapeChecks(shape: Shape, figures: Record<string, Figures>): Check[] {
  const value = ratio(figures[SUBJECT].cpuMsPer1000, figures[DAPHNE.name].cpuMsPer1000);
  return [
    {
      name: `${shape.label}: channels_redis layer CPU per delivery (server + redis) ≤ 0.5x ` +
        "Daphne's",
      scenario: "daphne",
      value,
      comparison: "<=",
      limit: 0.5,
      pass: value <= 0.5,
    },
    lossCheck(shape, SUBJECT, figures[SUBJECT], false),
    lossCheck(shape, OWN_FORMAT, figures[OWN_FORMAT], false),
    // The load was chosen so that Daphne loses nothing; a loss in a longer round is reported.
    lossCheck(shape, DAPHNE.name, figures[DAPHNE.name], true),
  ];
}

/** Runs one shape: picks the load by Daphne, then measures every server at it in turn. */
async function runShape(
  context: ScenarioContext,
  shape: Shape,
): Promise<{ figures: Record<string, Figures>; notes: string[] }> {
  // A try of a load on Daphne is as long as a measured round: a server that falls behind may
  // lose nothing for 3 s and still drop messages (channels_redis' capacity) in 10.
  const timing: Timing = context.options.quick
    ? { warmUpSeconds: QUICK_WARM_UP_SECONDS, seconds: shape.load.quickSeconds }
    : { warmUpSeconds: shape.load.warmUpSeconds, seconds: shape.load.seconds };
  const { rate, note, figures: chosen } = await chooseRate(context, shape, timing);
  const perServer = new Map<string, Figures[]>(TARGETS.map((target) => [target.name, []]));
  // The try that chose the load ran first, as Daphne does in the first round: it is that round.
  if (chosen !== null) perServer.get(DAPHNE.name)!.push(chosen);
  for (let round = 0; round < context.options.rounds; round++) {
    for (const target of roundOrder(TARGETS, round)) {
      if (round === 0 && target === DAPHNE && chosen !== null) continue;
      context.log(`daphne: ${shape.label} at ${rate}/s, ${target.name}, round ${round + 1}`);
      perServer.get(target.name)!.push(await measure(context, target, shape, rate, timing));
    }
  }
  const figures: Record<string, Figures> = {};
  for (const [name, rounds] of perServer) figures[name] = combine(rounds);
  const cpu = (name: string): number => figures[name].cpuMsPer1000;
  const deliveries = rate * shape.load.perRoom; // every member of the room, the sender too
  return {
    figures,
    notes: [
      note,
      `${shape.label}: ${shape.load.rooms} room(s) x ${shape.load.perRoom} clients, ` +
      `${shape.load.sendersPerRoom} sender(s) per room, ${rate} messages/s (${deliveries} ` +
      `deliveries/s), ${timing.seconds} s measured after ${timing.warmUpSeconds} s of warm-up, ` +
      `${context.options.rounds} round(s) per server, one server at a time`,
      `${shape.label} CPU per delivery, server + redis: ${SUBJECT}/daphne ` +
      `${ratio(cpu(SUBJECT), cpu("daphne")).toFixed(2)}x, ${OWN_FORMAT}/daphne ` +
      `${ratio(cpu(OWN_FORMAT), cpu("daphne")).toFixed(2)}x, ${SUBJECT}/${OWN_FORMAT} ` +
      `${ratio(cpu(SUBJECT), cpu(OWN_FORMAT)).toFixed(2)}x`,
    ],
  };
}

const TITLE = "Against Daphne: the channels_redis layer, the Redis layer and Daphne with " +
  "channels_redis, CPU per delivery of server + redis-server, fan-out and rooms";

/** `--only daphne`: Daphne vs the channels_redis layer vs the Redis layer. */
export const daphneScenario: Scenario = {
  name: "daphne",
  title: TITLE,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const servers = TARGETS.map((target) => target.name);
    const result: ScenarioResult = {
      name: "daphne",
      title: TITLE,
      metrics: [],
      figures: Object.fromEntries(servers.map((name) => [name, {}])),
      checks: [],
      notes: TARGETS.flatMap((target) => target.notes),
      servers,
    };
    const unavailable = await djangoUnavailable();
    if (unavailable !== null) {
      return { ...result, notes: [`SKIPPED: ${unavailable}`], servers: [] };
    }
    for (const shape of SHAPES) {
      const { figures, notes } = await runShape(context, shape);
      for (const metric of SHAPE_METRICS) {
        result.metrics.push({
          ...metric,
          key: `${shape.key}.${metric.key}`,
          label: `${shape.label}: ${metric.label}`,
        });
      }
      for (const name of servers) {
        for (const [key, value] of Object.entries(figures[name])) {
          result.figures[name][`${shape.key}.${key}`] = value;
        }
      }
      result.notes.push(...notes);
      result.checks.push(...shapeChecks(shape, figures));
    }
    return result;
  },
};
