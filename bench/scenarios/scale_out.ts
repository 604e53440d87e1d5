/**
 * Scale-out: the fan-out room over the Redis layer with one and two server processes, and
 * over `--workers 2`, against one in-process server. Two scenarios:
 *
 * - `scale-fanout`: the fixed-rate fan-out (1 room x 200 clients, 100 messages/s): zero loss
 *   and duplicates wherever the room is spread, and the server CPU per delivery of each form.
 * - `scale-saturation`: the saturation search on each form. Targets: Redis on one process
 *   holds >= 0.5x the in-process server's deliveries/s; two processes (Redis) hold more than
 *   one (Redis), and two Workers more than one process. Where a 2-core machine cannot show it
 *   (the generator needs part of a core too), the notes say why, and project the capacity
 *   from CPU per delivery, labelled as a projection.
 *
 * Each scenario starts its own redis-server on a free port. `redis-2p` is
 * `bench/scale_server.ts --processes 2`: two processes on one port with `reusePort`. Server
 * CPU and memory are summed over a form's whole process tree (a launcher and its servers).
 */
import {
  type Check,
  ratio,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../_scenario.ts";
import { OURS, type ServerTarget } from "../_servers.ts";
import { FANOUT_LOAD, fixedRateScenario } from "./fixed_rate.ts";
import { type Comparison, projection, verdict } from "./_scale_verdict.ts";
import {
  saturateEach,
  SATURATION_METRICS,
  saturationFigures,
  type Step,
  stepNote,
} from "./saturation.ts";
import { startRedisServer } from "../../tests/_support/redis.ts";

/** A form of deployment: how it is started, how many server processes (or Workers) it runs. */
interface Form {
  target: ServerTarget;
  processes: number;
  /** The one-process form a many-process form must beat. */
  base?: string;
  /** Joined through the bench's redis-server, whose CPU is not the form's own. */
  redis?: boolean;
}

function forms(redisUrl: string): Form[] {
  const redisEnv = { LAYER: "redis", REDIS_URL: redisUrl, REDIS_PREFIX: "bench" };
  return [
    { target: OURS, processes: 1 },
    {
      target: { ...OURS, name: "redis-1p", env: { ...OURS.env, ...redisEnv } },
      processes: 1,
      redis: true,
    },
    {
      target: {
        ...OURS,
        name: "redis-2p",
        module: "bench/scale_server.ts",
        denoFlags: ["--allow-run", ...OURS.denoFlags], // the launcher starts the processes
        args: ["--processes", "2"],
        env: { ...OURS.env, ...redisEnv },
      },
      processes: 2,
      base: "redis-1p",
      redis: true,
    },
    {
      target: { ...OURS, name: "workers-2", args: ["--workers", "2"] },
      processes: 2,
      base: "ours",
    },
  ];
}

function lossChecks(result: ScenarioResult, names: string[]): Check[] {
  return names.map((name) => {
    const figures = result.figures[name] ?? {};
    const value = (figures.lost ?? NaN) + (figures.unsent ?? NaN) + (figures.duplicated ?? NaN);
    return {
      name: `${name}: lost, unsent or duplicated messages`,
      scenario: result.name,
      value,
      comparison: "<=",
      limit: 0,
      pass: value === 0,
    };
  });
}

// `subject / base` of the held rate (a step of the search): "more than one" must be a higher
// step, not noise in the deliveries counted at one step.
function heldCheck(
  result: ScenarioResult,
  name: string,
  [subject, base]: [string, string],
  limit: number,
): Check {
  const value = ratio(
    result.figures[subject]?.heldRate ?? NaN,
    result.figures[base]?.heldRate ?? NaN,
  );
  const strict = limit === 1;
  return {
    name,
    scenario: result.name,
    value,
    comparison: ">=",
    limit,
    pass: strict ? value > limit : value >= limit,
  };
}

async function withRedis<T>(run: (forms: Form[]) => Promise<T>): Promise<T> {
  await using redis = await startRedisServer();
  return await run(forms(redis.url));
}

const FANOUT = fixedRateScenario({
  name: "scale-fanout",
  title: "Scale-out fan-out: 1 room x 200 clients, 5 senders, 100 messages/s, " +
    "in-process vs Redis (1 and 2 processes) vs 2 Workers",
  ...FANOUT_LOAD,
});

/** Fixed-rate fan-out over every scale-out form. */
export const scaleFanoutScenario: Scenario = {
  name: FANOUT.name,
  title: FANOUT.title,
  run: (context) =>
    withRedis(async (forms) => {
      const result = await FANOUT.run({ ...context, targets: forms.map((f) => f.target) });
      return {
        ...result,
        checks: lossChecks(result, ["redis-1p", "redis-2p", "workers-2"]),
        notes: [
          ...result.notes,
          "server CPU and RSS: every process of a form together; at this low rate a process's " +
          "fixed costs (timers, heartbeats) weigh on its CPU per delivery",
        ],
        servers: forms.map((form) => form.target.name),
      };
    }),
};

function comparisons(forms: Form[], steps: Map<string, Step[]>): Comparison[] {
  return forms.filter((form) => form.base !== undefined).map((form) => ({
    name: form.target.name,
    base: form.base!,
    processes: form.processes,
    redis: form.redis ?? false,
    steps: steps.get(form.target.name)!,
    baseSteps: steps.get(form.base!)!,
  }));
}

/** Saturation over every scale-out form, with what the CPU cost of each projects. */
export const scaleSaturationScenario: Scenario = {
  name: "scale-saturation",
  title: "Scale-out saturation: highest fan-out rate held (p99 <= 100 ms, no loss) per form",
  run: (context: ScenarioContext) =>
    withRedis(async (forms) => {
      const steps = await saturateEach(context, forms.map((form) => form.target));
      const figures: Record<string, Record<string, number>> = {};
      for (const [name, list] of steps) figures[name] = saturationFigures(list);
      const notes = [...steps].map(([name, list]) => stepNote(name, list));
      for (const comparison of comparisons(forms, steps)) {
        notes.push(verdict(comparison));
        const projected = projection(comparison);
        if (projected === null) continue;
        figures[comparison.name].projectedDeliveriesPerSecond = projected.deliveriesPerSecond;
        notes.push(
          `projection, not a measurement: ${comparison.name} with a free core per process ` +
            `would hold ${projected.scaling.toFixed(2)}x what ${comparison.base} held ` +
            `(${comparison.processes} x ${comparison.base}'s CPU per delivery over ` +
            `${comparison.name}'s, both at ${projected.rate} msg/s; at most ` +
            `${comparison.processes}x)`,
        );
      }
      const result: ScenarioResult = {
        name: "scale-saturation",
        title: scaleSaturationScenario.title,
        metrics: [...SATURATION_METRICS, {
          key: "projectedDeliveriesPerSecond",
          label: "projection: deliveries/s, a free core per process",
          digits: 0,
        }],
        figures,
        checks: [],
        notes,
        servers: forms.map((form) => form.target.name),
      };
      result.checks = [
        heldCheck(result, "Redis layer, 1 process vs in-process", ["redis-1p", "ours"], 0.5),
        heldCheck(result, "Redis layer, 2 processes vs 1 (more than 1x)", [
          "redis-2p",
          "redis-1p",
        ], 1),
        heldCheck(result, "2 Workers vs 1 process (more than 1x)", ["workers-2", "ours"], 1),
      ];
      return result;
    }),
};
