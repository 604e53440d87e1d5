/**
 * Saturation: the fan-out room at rising message rates until p99 exceeds 100 ms or a message
 * is lost. The highest rate held, in deliveries/s, is the server's sustainable throughput.
 *
 * The search brackets from a middle rate (x1.5 up while it holds, until it fails, /1.5 down while
 * it does not), then bisects between the highest rate held and the lowest one lost (`--quick`:
 * shorter steps, no bisection). A server is warmed up before its first step. Every step gets a
 * fresh room of fresh clients, and a step that failed leaves its server behind: the next step
 * starts a new one. Otherwise the clients an overloaded server closed (1013), or the backlog it is
 * still draining, would fail every later step whatever its rate. A step that failed only narrowly
 * (no loss, p99 under twice the limit) is tried once more: on a shared machine one step can land
 * on another process's burst.
 *
 * Each server is searched once per round (`--rounds`, 3 by default), in alternating order, and
 * keeps the highest rate it held in any of them. Other processes' bursts only ever make a
 * server look slower, so the best of the searches is the steadier estimate, for every server
 * alike.
 *
 * Each step reports the generator's own CPU: near a whole core, the generator, not the
 * server, was the limit.
 */
import {
  CHAT_PATH,
  ratioCheck,
  roundOrder,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  setName,
  sleep,
} from "../_scenario.ts";
import { type ServerProcess, type ServerTarget, startServerProcess } from "../_servers.ts";
import type { TrafficResult } from "../_protocol.ts";
import { CpuRecorder, sampleMachine, sampleProcess, sumSamples } from "../_proc.ts";

const ROOM_SIZE = 200;
const SENDERS = 5;
const MIN_RATE = 20;
const GROWTH = 1.5;
const P99_LIMIT_MS = 100;
const WARM_UP_RATE = 200;

/** How thorough a search is. */
interface Plan {
  startRate: number;
  /** Steps down, at most, before the bisections. */
  bracketSteps: number;
  /**
   * The highest rate tried. Up, the search goes on while the server holds: a fixed number of
   * steps up made a batching server that never failed read as the last step's rate.
   */
  maxRate: number;
  bisections: number;
  stepMs: number;
  warmUpMs: number;
  /** Whether a narrow failure is tried once more. */
  retry: boolean;
}

// `--quick` is a smoke test of the whole bench in a minute or two: a coarse search.
const FULL: Plan = {
  startRate: 300,
  bracketSteps: 8,
  maxRate: 100_000,
  bisections: 4,
  stepMs: 4000,
  warmUpMs: 1000,
  retry: true,
};
const QUICK: Plan = {
  startRate: 450,
  bracketSteps: 4,
  maxRate: 1_600,
  bisections: 0,
  stepMs: 1500,
  warmUpMs: 500,
  retry: false,
};

/** One step of the search. */
export interface Step {
  rate: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Lost, duplicated or unsent messages. */
  lost: number;
  closedByServer: number;
  held: boolean;
  /** While sending, in % of one core; near 100, the generator (not the server) was the limit. */
  generatorCpuPercent: number;
  /** While sending, the server's whole process tree, in % of one core (200: two cores). */
  serverCpuPercent: number;
  /** Server CPU time per delivery over the whole step and process tree, µs. */
  serverCpuUs: number;
  /** While sending, all cores and processes (Redis, other users too): 100 is all busy. */
  machineBusyPercent: number;
  /** The clients the server closed, `count x code`. */
  closeCodes: string;
}

/** The room a search fills: how many clients, on which path (`{room}` for its name). */
export interface RoomShape {
  size: number;
  pathTemplate: string;
}

const FAN_OUT_ROOM: RoomShape = { size: ROOM_SIZE, pathTemplate: CHAT_PATH };

function held(result: TrafficResult): boolean {
  return result.latency.p99 <= P99_LIMIT_MS && result.lost === 0 && result.duplicated === 0 &&
    result.closedByServer === 0 && result.sent === result.planned && result.expected > 0;
}

// Clients of a fresh room for one run of traffic, closed afterwards.
async function withRoom<T>(
  context: ScenarioContext,
  server: ServerProcess,
  room: RoomShape,
  run: (set: string) => Promise<T>,
): Promise<T> {
  const { generator } = context;
  const set = setName("saturation", server.name, 0);
  try {
    const connected = await generator.connect({
      set,
      port: server.port,
      rooms: [set],
      perRoom: room.size,
      mode: "read",
      pathTemplate: room.pathTemplate,
    });
    if (connected.failed > 0) throw new Error(`Clients could not connect: ${connected.firstError}`);
    await sleep(300); // the raw server adds a socket to its room on `open`, just after 101
    return await run(set);
  } finally {
    await generator.close(set).catch(() => {});
  }
}

// A server just started runs its code unoptimised for its first tens of thousands of
// deliveries: a step on it would measure V8's warm-up, not the server.
async function startWarm(
  context: ScenarioContext,
  target: ServerTarget,
  room: RoomShape,
): Promise<ServerProcess> {
  const server = await startServerProcess(target);
  try {
    await withRoom(context, server, room, (set) =>
      context.generator.traffic({
        set,
        sendersPerRoom: SENDERS,
        rate: WARM_UP_RATE,
        durationMs: (context.options.quick ? QUICK : FULL).warmUpMs,
        messageLength: 100,
        drainMs: 2000,
      }));
    await sleep(200);
    return server;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function runStep(
  context: ScenarioContext,
  server: ServerProcess,
  rate: number,
  room: RoomShape,
): Promise<Step> {
  const { generator, options } = context;
  return await withRoom(context, server, room, async (set) => {
    const cores = navigator.hardwareConcurrency;
    // The process tree once: listing it reads all of /proc, too much to do 4 times a second.
    const pids = server.pids;
    const recorder = new CpuRecorder([
      () => sumSamples(pids.map(sampleProcess)).cpuMs,
      () => generator.sample().cpuMs,
      () => sampleMachine().busyMs / cores,
    ]);
    const serverBefore = server.sample().cpuMs;
    const started = performance.now();
    let result: TrafficResult;
    try {
      result = await generator.traffic({
        set,
        sendersPerRoom: SENDERS,
        rate,
        durationMs: (options.quick ? QUICK : FULL).stepMs,
        messageLength: 100,
        drainMs: 3000,
      });
    } finally {
      recorder.stop();
    }
    const serverCpuMs = server.sample().cpuMs - serverBefore;
    // While sending, after the first half second: the steady state, not the drain after it.
    const [serverPercent, generatorPercent, machinePercent] = recorder.percent(
      started + 500,
      started + result.sendSeconds * 1000,
    );
    return {
      rate,
      deliveriesPerSecond: result.delivered / result.sendSeconds,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      lost: result.lost + result.duplicated + result.planned - result.sent,
      closedByServer: result.closedByServer,
      held: held(result),
      generatorCpuPercent: generatorPercent,
      serverCpuPercent: serverPercent,
      serverCpuUs: (serverCpuMs * 1000) / Math.max(1, result.delivered),
      machineBusyPercent: machinePercent,
      closeCodes: Object.entries(result.closeCodes).map(([code, n]) => `${n}x${code}`).join(" "),
    };
  });
}

// One log line per step and, after a failure, what the server warned about last.
function report(
  context: ScenarioContext,
  name: string,
  step: Step,
  server: ServerProcess,
): void {
  const closed = step.closeCodes ? ` (${step.closeCodes})` : "";
  context.log(
    `saturation: ${name} at ${step.rate} msg/s: ${step.deliveriesPerSecond.toFixed(0)} ` +
      `deliveries/s, p50 ${step.p50Ms.toFixed(1)} ms, p99 ${
        step.p99Ms.toFixed(1)
      } ms, lost ${step.lost}, closed ` +
      `${step.closedByServer}${closed}, server ${step.serverCpuPercent.toFixed(0)}% ` +
      `(${step.serverCpuUs.toFixed(1)} µs/delivery), generator ` +
      `${step.generatorCpuPercent.toFixed(0)}%, machine ${step.machineBusyPercent.toFixed(0)}% ` +
      `busy -> ${step.held ? "held" : "not held"}`,
  );
  if (step.held) return;
  const warnings = server.output().split("\n").filter((line) => /WARN|ERROR/.test(line));
  if (warnings.length > 0) {
    context.log(`saturation: ${name} said last:\n  ${warnings.slice(-3).join("\n  ")}`);
  }
}

/**
 * Runs the search against `target` (reported as `name`), in rooms of `room`'s shape (by
 * default the fan-out room); returns every step in the order run.
 */
export async function saturate(
  context: ScenarioContext,
  target: ServerTarget,
  room: RoomShape = FAN_OUT_ROOM,
  name: string = target.name,
): Promise<Step[]> {
  const plan = context.options.quick ? QUICK : FULL;
  const steps: Step[] = [];
  let server: ServerProcess | null = null;
  const attempt = async (rate: number): Promise<Step> => {
    server ??= await startWarm(context, target, room);
    const step = await runStep(context, server, rate, room);
    steps.push(step);
    report(context, name, step, server);
    if (!step.held) {
      await server.stop();
      server = null;
    } else await sleep(200);
    return step;
  };
  const holds = async (rate: number): Promise<boolean> => {
    const first = await attempt(rate);
    if (first.held) return true;
    const narrow = plan.retry && first.lost === 0 && first.closedByServer === 0 &&
      first.p99Ms <= 2 * P99_LIMIT_MS;
    return narrow && (await attempt(rate)).held;
  };
  try {
    let low = 0, high = Infinity, rate = plan.startRate;
    for (let down = 0;;) {
      if (await holds(rate)) {
        low = rate;
        if (high < Infinity) break;
        const next = Math.round(rate * GROWTH);
        if (next > plan.maxRate) break;
        rate = next;
      } else {
        high = rate;
        if (low > 0) break;
        rate = Math.round(rate / GROWTH);
        if (rate < MIN_RATE || ++down >= plan.bracketSteps) break;
      }
    }
    for (let i = 0; i < plan.bisections && low > 0 && high < Infinity; i++) {
      const middle = Math.round(Math.sqrt(low * high));
      if (middle <= low || middle >= high) break;
      if (await holds(middle)) low = middle;
      else high = middle;
    }
    return steps;
  } finally {
    await (server as ServerProcess | null)?.stop();
  }
}

/** Searches every target once per round, alternating the order; their steps, by target name. */
export async function saturateEach(
  context: ScenarioContext,
  targets: ServerTarget[],
): Promise<Map<string, Step[]>> {
  const steps = new Map<string, Step[]>(targets.map((target) => [target.name, []]));
  for (let round = 0; round < context.options.rounds; round++) {
    for (const target of roundOrder(targets, round)) {
      steps.get(target.name)!.push(...await saturate(context, target));
    }
  }
  return steps;
}

/** The highest step held, or null. */
export function bestStep(steps: Step[]): Step | null {
  return steps.filter((s) => s.held).sort((a, b) => b.rate - a.rate)[0] ?? null;
}

/** A target's figures from its steps. */
export function saturationFigures(steps: Step[]): Record<string, number> {
  const best = bestStep(steps);
  return {
    heldRate: best?.rate ?? 0,
    heldDeliveriesPerSecond: best?.deliveriesPerSecond ?? 0,
    heldP99Ms: best?.p99Ms ?? 0,
    serverCpuPercent: best?.serverCpuPercent ?? 0,
    serverCpuUs: best?.serverCpuUs ?? 0,
    generatorCpuPercent: best?.generatorCpuPercent ?? 0,
    steps: steps.length,
  };
}

/** The figures shown for a saturation search. */
export const SATURATION_METRICS = [
  { key: "heldRate", label: "highest rate held, messages/s", digits: 0 },
  { key: "heldDeliveriesPerSecond", label: "highest rate held, deliveries/s", digits: 0 },
  { key: "heldP99Ms", label: "p99 ms at that rate", digits: 1 },
  { key: "serverCpuPercent", label: "server CPU % of one core at that rate", digits: 0 },
  { key: "serverCpuUs", label: "server CPU µs / delivery at that rate", digits: 2 },
  { key: "generatorCpuPercent", label: "generator CPU % of one core at that rate", digits: 0 },
];

/** One line per target: every step as `msg/s:p99 ms:lost:server %:generator %`. */
export function stepNote(name: string, steps: Step[]): string {
  return `${name} steps (msg/s:p99 ms:lost:server %:generator %): ` +
    steps.map((s) =>
      `${s.rate}:${s.p99Ms.toFixed(0)}:${s.lost}:${s.serverCpuPercent.toFixed(0)}:` +
      s.generatorCpuPercent.toFixed(0)
    ).join(" ");
}

/** The saturation scenario. */
export const saturationScenario: Scenario = {
  name: "saturation",
  title:
    `Saturation: 1 room x ${ROOM_SIZE} clients, rising rate until p99 > ${P99_LIMIT_MS} ms or loss`,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const figures: Record<string, Record<string, number>> = {};
    const notes: string[] = [];
    for (const [name, steps] of await saturateEach(context, context.targets)) {
      figures[name] = saturationFigures(steps);
      notes.push(stepNote(name, steps));
    }
    const result = { name: "saturation", figures };
    return {
      name: "saturation",
      title: this.title,
      metrics: SATURATION_METRICS,
      figures,
      checks: [ratioCheck(result, context.targets, {
        name: "sustainable deliveries/s",
        metric: "heldDeliveriesPerSecond",
        comparison: ">=",
        limit: 0.9,
      })],
      notes: [
        `every step: a fresh room of ${ROOM_SIZE} clients, ${SENDERS} of them senders; a new ` +
        `server after a step that failed; ${context.options.rounds} search(es) per server, ` +
        `the best kept`,
        ...notes,
      ],
    };
  },
};
