/**
 * Cold start: this server exactly as `deno task start` runs it (the `start` task of deno.json,
 * every setting at its default: `info` logs, 20 messages/s per socket with a burst of 40; but
 * the cap of 256 sockets per client address, lifted because the bench's 500 clients all come
 * from 127.0.0.1),
 * measured from its first seconds with no warm-up, against the raw baseline started at the
 * same moment. The other fixed-rate scenarios measure both servers warm, and ours with the
 * rate limit raised; this one is what a user's server does right after `deno task start`.
 *
 * The load is the rooms scenario's (50 rooms x 10 clients, one sender per room, 500 messages/s
 * in all), so each sender sends 10 messages/s, half the default limit: nothing may be refused,
 * and a rate-limit error frame fails the round like a lost message. Only the load generators
 * warm up first (against a throwaway raw server), so that a fresh generator process does not
 * weigh on the server it loads.
 */
import { DEFAULT_CONFIG } from "../../server/config.ts";
import {
  CHAT_PATH,
  type Check,
  mib,
  ratioCheck,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  setName,
  sleep,
} from "../_scenario.ts";
import {
  OURS_AS_STARTED,
  RAW,
  type ServerProcess,
  type ServerTarget,
  startServerProcess,
} from "../_servers.ts";
import { LoadGenerator } from "../_generator.ts";
import type { TrafficRequest } from "../_protocol.ts";
import { probeOffset } from "../_recovery_client.ts";

const NAME = "cold-start";
const ROOMS = 50;
const PER_ROOM = 10;
const RATE = 500;
const MESSAGE_LENGTH = 100;
const SECONDS = 10;
const QUICK_SECONDS = 5;
const GENERATOR_WARM_UP_SECONDS = 2;
/** The target: rooms CPU per delivery within 1.25x raw, cold (here) and warm (rooms). */
const CPU_TARGET = 1.25;

/**
 * Ours as `deno task start` runs it, but for the per-address connection cap (default 256):
 * every client of the bench comes from 127.0.0.1, where a deployment's come from many.
 */
const OURS_COLD: ServerTarget = {
  ...OURS_AS_STARTED,
  env: { MAX_CONNECTIONS_PER_ADDRESS: "0" },
  defaultsExcept: ["maxConnectionsPerAddress"],
  notes: [
    ...OURS_AS_STARTED.notes,
    "ours: but MAX_CONNECTIONS_PER_ADDRESS=0 (default 256 sockets per client address): the " +
    `bench's ${ROOMS * PER_ROOM} clients all come from 127.0.0.1`,
  ],
};

// Messages per second each sender sends: one sender per room.
const PER_SENDER_RATE = RATE / ROOMS;
if (PER_SENDER_RATE > DEFAULT_CONFIG.rateLimit.perSecond / 2) {
  throw new Error(`Cold start: ${PER_SENDER_RATE} messages/s per sender nears the default limit`);
}

const METRICS = [
  { key: "readyMs", label: "ms from spawn to listening", digits: 0 },
  { key: "readyCpuMs", label: "CPU ms until listening", digits: 0 },
  { key: "trafficStartS", label: "s from spawn to the first message", digits: 2 },
  {
    key: "cpuBeforeTrafficMs",
    label: "CPU ms until the first message (start + 500 handshakes)",
    digits: 0,
  },
  { key: "deliveriesPerSecond", label: "deliveries/s", digits: 0 },
  { key: "p50Ms", label: "p50 latency ms", digits: 2 },
  { key: "p99Ms", label: "p99 latency ms", digits: 2 },
  { key: "maxMs", label: "max latency ms", digits: 2 },
  { key: "lost", label: "lost", digits: 0 },
  { key: "unsent", label: "unsent (server closed the sender)", digits: 0 },
  { key: "duplicated", label: "duplicated", digits: 0 },
  { key: "errorFrames", label: "error frames (e.g. rate limit)", digits: 0 },
  { key: "closedByServer", label: "sockets closed by the server", digits: 0 },
  { key: "rssMiB", label: "server RSS MiB at the end", digits: 1 },
  { key: "cpuMsPer1000", label: "server CPU ms / 1000 deliveries", digits: 2 },
  { key: "serverCpuPercent", label: "server CPU % of one core", digits: 0 },
  { key: "generatorCpuPercent", label: "generator CPU % of one core", digits: 0 },
];

type Figures = Record<string, number>;

// The rooms load on `set`, for `seconds`.
function traffic(set: string, seconds: number): Omit<TrafficRequest, "op"> {
  return {
    set,
    sendersPerRoom: 1,
    rate: RATE,
    durationMs: seconds * 1000,
    messageLength: MESSAGE_LENGTH,
    drainMs: 5000,
  };
}

// Opens the rooms' clients of `generator` on `port` into a new set; throws if any failed.
async function connect(
  generator: LoadGenerator,
  port: number,
  server: string,
  round: number,
): Promise<string> {
  const set = setName(NAME, server, round);
  const connected = await generator.connect({
    set,
    port,
    rooms: Array.from({ length: ROOMS }, (_, r) => `${NAME}-${round}-${r}`),
    perRoom: PER_ROOM,
    mode: "read",
    pathTemplate: CHAT_PATH,
  });
  if (connected.failed > 0) {
    await generator.close(set).catch(() => {});
    throw new Error(`${connected.failed} clients could not connect: ${connected.firstError}`);
  }
  return set;
}

// Connects generator i to port i, all at once; closes what did connect if any failed.
async function connectAll(
  generators: LoadGenerator[],
  servers: { port: number; name: string }[],
  round: number,
): Promise<string[]> {
  const connected = await Promise.allSettled(
    servers.map((server, i) => connect(generators[i], server.port, server.name, round)),
  );
  const failed = connected.find((c) => c.status === "rejected");
  if (failed === undefined) {
    return connected.map((c) => (c as PromiseFulfilledResult<string>).value);
  }
  await closeAll(generators, connected.map((c) => c.status === "fulfilled" ? c.value : null));
  throw failed.reason;
}

async function closeAll(generators: LoadGenerator[], sets: (string | null)[]): Promise<void> {
  for (const [i, set] of sets.entries()) {
    if (set !== null) await generators[i].close(set).catch(() => {});
  }
}

// Warms up the generators' own code (not the servers') on a throwaway raw server.
async function warmUpGenerators(generators: LoadGenerator[], seconds: number): Promise<void> {
  await using server = await startServerProcess(RAW);
  const sets = await connectAll(generators, generators.map(() => server), -1);
  try {
    await sleep(300);
    await Promise.all(generators.map((g, i) => g.traffic(traffic(sets[i], seconds))));
  } finally {
    await closeAll(generators, sets);
  }
}

// One round: both servers spawned at the same moment, their clients connected as soon as they
// listen, then the load on both at once with no warm-up.
async function measure(
  targets: ServerTarget[],
  generators: LoadGenerator[],
  round: number,
  seconds: number,
): Promise<Figures[]> {
  const servers: ServerProcess[] = [];
  let sets: string[] = [];
  try {
    const started = await Promise.allSettled(targets.map((target) => startServerProcess(target)));
    for (const start of started) if (start.status === "fulfilled") servers.push(start.value);
    for (const start of started) if (start.status === "rejected") throw start.reason;
    sets = await connectAll(generators, servers, round);
    await sleep(300); // the raw server adds a socket to its room on `open`, just after 101
    const before = servers.map((server) => server.sample());
    const generatorsBefore = generators.map((generator) => generator.sample());
    const trafficAt = performance.now();
    const results = await Promise.all(
      sets.map((set, i) => generators[i].traffic(traffic(set, seconds))),
    );
    const figures = results.map((result, i) => {
      const after = servers[i].sample();
      const wallMs = result.activeSeconds * 1000;
      const cpuMs = after.cpuMs - before[i].cpuMs;
      const generatorCpuMs = generators[i].sample().cpuMs - generatorsBefore[i].cpuMs;
      return {
        readyMs: servers[i].ready.ms,
        readyCpuMs: servers[i].ready.cpuMs,
        trafficStartS: (trafficAt - servers[i].spawnedAt) / 1000,
        cpuBeforeTrafficMs: before[i].cpuMs,
        activeSeconds: result.activeSeconds,
        deliveries: result.delivered,
        deliveriesPerSecond: result.delivered / result.activeSeconds,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        maxMs: result.latency.max,
        lost: result.lost,
        unsent: result.planned - result.sent,
        duplicated: result.duplicated,
        misrouted: result.misrouted,
        errorFrames: result.errorFrames,
        closedByServer: result.closedByServer,
        rssMiB: mib(after.rssBytes),
        cpuMs,
        cpuMsPer1000: (cpuMs * 1000) / Math.max(1, result.delivered),
        serverCpuPercent: (cpuMs * 100) / wallMs,
        generatorCpuPercent: (generatorCpuMs * 100) / wallMs,
        warnings: warnings(servers[i].output()),
      };
    });
    // After the measured seconds, so that the probe costs them nothing: ours sent each chat
    // frame with its offset in the room's stream.
    for (const server of servers.slice(1)) {
      const offset = await probeOffset(server.port, `${NAME}-${round}-offset-probe`);
      if (typeof offset !== "number") {
        throw new Error(`${server.name}: a chat frame came without its "offset"`);
      }
    }
    return figures;
  } finally {
    await closeAll(generators, sets);
    for (const server of servers) await server.stop();
  }
}

// Warning and error lines among the last lines a server printed on stderr.
function warnings(output: string): number {
  return output.split("\n").filter((line) => / (WARN|ERROR) /.test(line)).length;
}

// Counts add up over rounds; times, rates, latencies and memory are averaged; CPU per
// delivery is total CPU over total deliveries.
function combine(rounds: Figures[]): Figures {
  const sum = (key: string): number => rounds.reduce((total, f) => total + f[key], 0);
  const mean = (key: string): number => sum(key) / rounds.length;
  const figures: Figures = {};
  for (
    const key of ["lost", "unsent", "duplicated", "misrouted", "errorFrames", "closedByServer"]
  ) figures[key] = sum(key);
  figures.warnings = sum("warnings");
  for (
    const key of [
      "readyMs",
      "readyCpuMs",
      "trafficStartS",
      "cpuBeforeTrafficMs",
      "deliveriesPerSecond",
      "p50Ms",
      "p99Ms",
      "rssMiB",
      "serverCpuPercent",
      "generatorCpuPercent",
    ]
  ) figures[key] = mean(key);
  figures.maxMs = Math.max(...rounds.map((f) => f.maxMs));
  figures.cpuMsPer1000 = (sum("cpuMs") * 1000) / Math.max(1, sum("deliveries"));
  return figures;
}

// What went wrong in a round: messages lost, unsent, duplicated or misrouted, error frames (a
// rate-limit refusal) and sockets the server closed. Anything but 0 fails it.
function failures(f: Figures): number {
  return f.lost + f.unsent + f.duplicated + f.misrouted + f.errorFrames + f.closedByServer;
}

/** The cold-start scenario: ours as `deno task start` runs it, first seconds, no warm-up. */
export const coldStartScenario: Scenario = {
  name: NAME,
  title: "Cold start, as deno task start runs it (rooms load, no warm-up)",
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const seconds = context.options.quick ? QUICK_SECONDS : SECONDS;
    const rounds = context.options.rounds;
    const targets = [context.targets[0], OURS_COLD];
    await using extra = new AsyncDisposableStack();
    const generators = [context.generator, extra.use(LoadGenerator.start())];
    const warmUp = context.options.quick ? 1 : GENERATOR_WARM_UP_SECONDS;
    context.log(`${NAME}: warming up the load generators (${warmUp} s, a throwaway raw server)`);
    await warmUpGenerators(generators, warmUp);
    const perServer = targets.map((): Figures[] => []);
    for (let round = 0; round < rounds; round++) {
      context.log(`${NAME}: both servers started at once, round ${round + 1} of ${rounds}`);
      const figures = await measure(targets, generators, round, seconds);
      figures.forEach((f, i) => perServer[i].push(f));
    }
    const figures: Record<string, Figures> = {};
    targets.forEach((target, i) => figures[target.name] = combine(perServer[i]));
    const result = { name: NAME, figures };
    const subject = targets[1].name;
    const failed = failures(figures[subject]);
    const checks: Check[] = [
      ratioCheck(result, targets, {
        name: `CPU per delivery, first ${seconds} s after a cold start`,
        metric: "cpuMsPer1000",
        comparison: "<=",
        limit: CPU_TARGET,
      }),
      {
        name: `${subject}: lost, unsent, duplicated, error frames (rate limit) or closed`,
        scenario: NAME,
        value: failed,
        comparison: "<=",
        limit: 0,
        pass: failed === 0,
      },
    ];
    const perRound = (name: string, list: Figures[]): string =>
      `${name} per round (CPU ms / 1000 deliveries, p99 ms, s from spawn to the first ` +
      `message): ` +
      list.map((f) =>
        `${f.cpuMsPer1000.toFixed(2)} ${f.p99Ms.toFixed(2)} ${f.trafficStartS.toFixed(2)}` +
        (failures(f) > 0 ? ` (FAILED: ${failures(f)} lost, refused or closed)` : "")
      ).join(", ");
    return {
      name: NAME,
      title: `Cold start, as deno task start runs it: ${ROOMS} rooms x ${PER_ROOM} clients, ` +
        `${RATE} messages/s, the first ${seconds} s of traffic, no warm-up`,
      metrics: METRICS,
      figures,
      checks,
      notes: [
        ...OURS_COLD.notes,
        `Both servers spawned at the same moment, each loaded by its own generator; the load ` +
        `starts as soon as both have their ${ROOMS * PER_ROOM} clients and runs ${seconds} s, ` +
        `with no warm-up of the servers (the generators warmed up first, on a throwaway raw ` +
        `server); ${rounds} round(s), each from a fresh start. CPU per delivery counts the ` +
        `seconds of traffic; the start-up's CPU is on its own rows.`,
        `One sender per room at ${PER_SENDER_RATE} messages/s, under the default limit of ` +
        `${DEFAULT_CONFIG.rateLimit.perSecond}/s (burst ${DEFAULT_CONFIG.rateLimit.burst}): ` +
        `any loss, duplicate, error frame or closed socket of ours fails the round.`,
        `Target: rooms CPU per delivery <= ${CPU_TARGET}x raw in the first ${SECONDS} s after ` +
        `a cold start (here) and warm (the rooms scenario), with message offsets on (ours' ` +
        `chat frames carry their "offset": checked after each round).`,
        ...targets.map((target, i) => perRound(target.name, perServer[i])),
        ...(figures[subject].warnings > 0
          ? [`${subject} logged ${figures[subject].warnings} warning(s) or error(s)`]
          : []),
      ],
    };
  },
};
