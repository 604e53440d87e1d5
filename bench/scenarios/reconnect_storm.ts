/**
 * The reconnect storm: 1,000 chat clients in 50 rooms, all using the recovery protocol, drop
 * at the same moment and reconnect while messages flow, on the in-process layer and on Redis.
 *
 * One sender per room stays connected and sends at a fixed rate throughout. The clients (a
 * separate process, `bench/_recovery_client.ts`, plain Deno WebSockets) first connect with
 * `?stream=1`; at the drop each closes its socket, waits the browser module's backoff
 * (`client/backoff.js`: the first retry after 0.25 to 0.5 s, then doubling, with jitter) and
 * reconnects with `?epoch=E&since=N`. A client has recovered once it has every message up to
 * the offset its `recovered` frame named. Measured: the time from the drop until each client
 * and the last has recovered, the messages lost, duplicated or out of order (counted per client
 * by offset; all must be 0), `complete: false` answers (must be 0: the load stays far inside
 * the retention window), and the server's CPU from the drop until the last client recovered
 * (with its redis-server's on Redis).
 */
import { fromFileUrl } from "@std/path";
import type { Check, MetricSpec, Scenario, ScenarioContext, ScenarioResult } from "../_scenario.ts";
import { sleep } from "../_scenario.ts";
import { OURS, type ServerProcess, type ServerTarget, startServerProcess } from "../_servers.ts";
import { type ProcSample, sampleProcess } from "../_proc.ts";
import type { StormEvent, StormRequest } from "../_recovery_client.ts";
import { type BenchRedis, oursOnRedis, startBenchRedis } from "./_bench_redis.ts";

const NAME = "storm";
const ROOMS = 50;
const PER_ROOM = 20;
/** Messages per second in all: 10 a room, half the default rate limit of one socket. */
const RATE = 500;
const MESSAGE_LENGTH = 100;
/** Messages flow this long before the drop (the first half not measured). */
const FLOW_MS = 4000;
const QUICK_FLOW_MS = 2000;
const AFTER_MS = 2000;
const QUICK_AFTER_MS = 1000;
const TIMEOUT_MS = 60_000;
const DRAIN_MS = 10_000;
const GENERATOR = fromFileUrl(new URL("../_recovery_client.ts", import.meta.url));

const METRICS: MetricSpec[] = [
  { key: "allRecoveredMs", label: "ms from the drop until the last client recovered", digits: 0 },
  { key: "recoveryP50Ms", label: "per client, ms from the drop: p50", digits: 0 },
  { key: "recoveryP99Ms", label: "per client, ms from the drop: p99", digits: 0 },
  { key: "recoveryMaxMs", label: "per client, ms from the drop: max", digits: 0 },
  { key: "serverP50Ms", label: "per client, ms from its reconnect: p50", digits: 1 },
  { key: "serverP99Ms", label: "per client, ms from its reconnect: p99", digits: 1 },
  { key: "serverMaxMs", label: "per client, ms from its reconnect: max", digits: 1 },
  { key: "lost", label: "lost", digits: 0 },
  { key: "duplicated", label: "duplicated", digits: 0 },
  { key: "outOfOrder", label: "out of order", digits: 0 },
  { key: "incomplete", label: "complete: false", digits: 0 },
  { key: "notRecovered", label: "clients not recovered", digits: 0 },
  { key: "failedAttempts", label: "reconnects refused (retried)", digits: 0 },
  { key: "replayed", label: "messages replayed", digits: 0 },
  { key: "stormCpuS", label: "server CPU s, drop to last recovered", digits: 2 },
  { key: "stormCpuPercent", label: "server CPU % of one core, drop to last recovered", digits: 0 },
  { key: "flowCpuPercent", label: "server CPU % of one core before the drop", digits: 0 },
  { key: "generatorStormCpuPercent", label: "generator CPU %, drop to last recovered", digits: 0 },
  { key: "generatorFlowCpuPercent", label: "generator CPU % before the drop", digits: 0 },
];

type Figures = Record<string, number>;

/** A layer under test: its server, and what else counts as its CPU (a redis-server). */
interface Layer {
  name: string;
  target(round: number): ServerTarget;
  companion: (() => ProcSample) | null;
}

function layers(redis: BenchRedis): Layer[] {
  return [
    { name: "memory", target: () => ({ ...OURS, name: "memory" }), companion: null },
    {
      name: "redis",
      target: (round) => oursOnRedis("redis", redis, `bench-storm-${round}`),
      companion: () => redis.sample(),
    },
  ];
}

/** The generator process of one storm, read one event at a time. */
class StormGenerator implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #encoder = new TextEncoder();

  constructor() {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", GENERATOR],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = lines(this.#child.stdout)[Symbol.asyncIterator]();
  }

  cpuMs(): number {
    return sampleProcess(this.#child.pid).cpuMs;
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(this.#encoder.encode(line + "\n"));
  }

  /** The next event; throws on an error event, an exit or `timeoutMs` without one. */
  async next(timeoutMs: number): Promise<StormEvent> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("The storm generator did not answer")), timeoutMs);
    });
    const next = await Promise.race([this.#lines.next(), timeout]).finally(() =>
      clearTimeout(timer)
    );
    if (next.done) throw new Error("The storm generator exited");
    const event = JSON.parse(next.value) as StormEvent;
    if (event.event === "error") throw new Error(`Storm generator: ${event.error}`);
    return event;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#child.status;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let at;
    while ((at = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
    }
  }
}

/** One storm against a fresh server of `layer`. */
async function measure(
  context: ScenarioContext,
  layer: Layer,
  round: number,
): Promise<Figures> {
  const quick = context.options.quick;
  const cpu = (server: ServerProcess): number =>
    server.sample().cpuMs + (layer.companion?.().cpuMs ?? 0);
  await using server = await startServerProcess(layer.target(round));
  await using generator = new StormGenerator();
  const request: StormRequest = {
    port: server.port,
    rooms: Array.from({ length: ROOMS }, (_, r) => `${NAME}-${round}-${r}`),
    perRoom: PER_ROOM,
    rate: RATE,
    messageLength: MESSAGE_LENGTH,
    afterMs: quick ? QUICK_AFTER_MS : AFTER_MS,
    timeoutMs: TIMEOUT_MS,
    drainMs: DRAIN_MS,
    batch: true,
    concurrency: 32,
  };
  await generator.send(JSON.stringify(request));
  const flowing = await generator.next(120_000);
  if (flowing.event !== "flowing") throw new Error(`Unexpected ${flowing.event}`);
  const flowMs = quick ? QUICK_FLOW_MS : FLOW_MS;
  await sleep(flowMs / 2);
  const flowFrom = { at: performance.now(), server: cpu(server), generator: generator.cpuMs() };
  await sleep(flowMs / 2);
  const before = { at: performance.now(), server: cpu(server), generator: generator.cpuMs() };
  await generator.send("drop");
  const recovered = await generator.next(TIMEOUT_MS + 10_000);
  const after = { at: performance.now(), server: cpu(server), generator: generator.cpuMs() };
  if (recovered.event !== "recovered") throw new Error(`Unexpected ${recovered.event}`);
  const done = await generator.next(TIMEOUT_MS + DRAIN_MS + 30_000);
  if (done.event !== "done") throw new Error(`Unexpected ${done.event}`);
  const result = done.result;
  const percent = (cpuMs: number, from: number, to: number): number =>
    (cpuMs * 100) / Math.max(1, to - from);
  return {
    allRecoveredMs: result.allRecoveredMs,
    recoveryP50Ms: result.recoveryMs.p50,
    recoveryP99Ms: result.recoveryMs.p99,
    recoveryMaxMs: result.recoveryMs.max,
    serverP50Ms: result.serverMs.p50,
    serverP99Ms: result.serverMs.p99,
    serverMaxMs: result.serverMs.max,
    lost: result.lost,
    duplicated: result.duplicated,
    outOfOrder: result.outOfOrder,
    incomplete: result.incomplete,
    notRecovered: result.clients - result.recovered,
    failedAttempts: result.failedAttempts,
    replayed: result.replayed,
    problems: result.epochChanges + result.errorFrames + result.closedByServer +
      result.senderProblems,
    stormCpuS: (after.server - before.server) / 1000,
    stormCpuPercent: percent(after.server - before.server, before.at, after.at),
    flowCpuPercent: percent(before.server - flowFrom.server, flowFrom.at, before.at),
    generatorStormCpuPercent: percent(after.generator - before.generator, before.at, after.at),
    generatorFlowCpuPercent: percent(before.generator - flowFrom.generator, flowFrom.at, before.at),
  };
}

const SUMMED = [
  "lost",
  "duplicated",
  "outOfOrder",
  "incomplete",
  "notRecovered",
  "failedAttempts",
  "replayed",
  "problems",
];
const WORST = ["allRecoveredMs", "recoveryMaxMs", "serverMaxMs"];

// Counts add up over rounds, the longest times are the worst round's, the rest are averaged.
function combine(rounds: Figures[]): Figures {
  const figures: Figures = {};
  for (const key of Object.keys(rounds[0])) {
    const values = rounds.map((f) => f[key]);
    figures[key] = SUMMED.includes(key)
      ? values.reduce((a, b) => a + b, 0)
      : WORST.includes(key)
      ? Math.max(...values)
      : values.reduce((a, b) => a + b, 0) / values.length;
  }
  return figures;
}

function zeroCheck(layer: string, name: string, value: number): Check {
  return {
    name: `${layer}: ${name}`,
    scenario: NAME,
    value,
    comparison: "<=",
    limit: 0,
    pass: value === 0,
  };
}

/** The reconnect storm on the in-process layer and on Redis. */
export const reconnectStormScenario: Scenario = {
  name: NAME,
  title: "Reconnect storm",
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    await using redis = await startBenchRedis();
    const all = layers(redis);
    const perLayer = new Map<string, Figures[]>(all.map((layer) => [layer.name, []]));
    const rounds = context.options.rounds;
    for (let round = 0; round < rounds; round++) {
      // ABBA: a drift in the machine's load weighs on both layers alike.
      for (const layer of round % 2 === 0 ? all : [...all].reverse()) {
        context.log(`${NAME}: ${layer.name}, round ${round + 1} of ${rounds}`);
        perLayer.get(layer.name)!.push(await measure(context, layer, round));
      }
    }
    const figures: Record<string, Figures> = {};
    for (const [name, list] of perLayer) figures[name] = combine(list);
    const checks = all.flatMap((layer) => {
      const f = figures[layer.name];
      return [
        zeroCheck(
          layer.name,
          "lost, duplicated or out of order after the storm",
          f.lost + f.duplicated + f.outOfOrder,
        ),
        zeroCheck(
          layer.name,
          "complete:false, not recovered, errors or closed sockets",
          f.incomplete + f.notRecovered + f.problems,
        ),
      ];
    });
    const quick = context.options.quick;
    return {
      name: NAME,
      title: `Reconnect storm: ${ROOMS * PER_ROOM} clients in ${ROOMS} rooms drop at once and ` +
        `reconnect while ${RATE} messages/s flow`,
      metrics: METRICS,
      figures,
      checks,
      notes: [
        `memory: ours (main.ts as in the other scenarios) on the in-process layer; redis: the ` +
        `same with LAYER=redis, its redis-server's CPU counted with the server's. A fresh ` +
        `server per round, ${rounds} round(s) per layer, alternating; counts are summed over ` +
        `rounds, the longest times are the worst round's, the rest averaged.`,
        `${ROOMS} rooms x ${PER_ROOM} clients (?stream=1, then ?epoch=&since= after the drop, ` +
        `?batch=1 as the site's page), plus one sender per room that stays connected, ` +
        `${RATE / ROOMS} messages/s each; messages flow ${
          (quick ? QUICK_FLOW_MS : FLOW_MS) / 1000
        } ` +
        `s before the drop and ${(quick ? QUICK_AFTER_MS : AFTER_MS) / 1000} s after the last ` +
        `client recovered. The drop closes every client's socket at the same moment; each ` +
        `reconnects after client/backoff.js's delay (0.25 to 0.5 s for the first attempt).`,
        `Recovered: the client has every message up to the offset of its "recovered" frame. ` +
        `"From the drop" includes the backoff; "from its reconnect" is the handshake and the ` +
        `replay. Lost: an offset of the room after the client's first position it never got; ` +
        `duplicated: one it got twice; out of order: a frame whose offset did not follow the ` +
        `previous one on its connection.`,
        `The clients are plain Deno WebSockets in one generator process; its CPU is printed ` +
        `so that a saturated generator (near 100%) would show.`,
      ],
      servers: all.map((layer) => layer.name),
    };
  },
};
