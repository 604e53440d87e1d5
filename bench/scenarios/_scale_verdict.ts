/**
 * What the scale-out saturation search says about a many-process form against its
 * one-process base: whether it held more (measured scaling), why not when it did not, and
 * the capacity its CPU cost projects with a free core per process.
 */
import { ratio } from "../_scenario.ts";
import { bestStep, type Step } from "./saturation.ts";

/** A many-process form and the steps of its search and of its base's. */
export interface Comparison {
  name: string;
  base: string;
  /** Server processes (or Workers) of the form; its base has one. */
  processes: number;
  /** Joined through the bench's redis-server, whose CPU is not the form's own. */
  redis: boolean;
  steps: Step[];
  baseSteps: Step[];
}

/**
 * One line: the form held more than its base (measured scaling), or it did not, and what
 * the machine says about why: every core was busy (no room for a second process), other
 * processes took the CPU, or cores were free (the limit was not CPU).
 */
export function verdict(c: Comparison): string {
  const held = bestStep(c.steps)?.rate ?? 0, baseHeld = bestStep(c.baseSteps)?.rate ?? 0;
  if (held > baseHeld) {
    return `${c.name} held ${ratio(held, baseHeld).toFixed(2)}x the rate of ${c.base}: ` +
      `measured scaling`;
  }
  const limit = c.steps.filter((s) => !s.held && s.rate > held).sort((a, b) => a.rate - b.rate)[0];
  if (limit === undefined) return `${c.name} held no more than ${c.base}`;
  const cores = navigator.hardwareConcurrency;
  const own = limit.serverCpuPercent + limit.generatorCpuPercent;
  const others = Math.max(0, limit.machineBusyPercent * cores - own);
  const why = own >= 85 * cores
    ? "the server and the generator kept every core busy: no core was free for a second " +
      "process; see the projection"
    : others >= 25
    ? "other processes took the CPU it needed: run the bench again on a quiet machine"
    : "cores were free: the limit was not CPU";
  return `${c.name} held no more than ${c.base}. At ${limit.rate} msg/s: server ` +
    `${limit.serverCpuPercent.toFixed(0)}% + generator ${limit.generatorCpuPercent.toFixed(0)}% ` +
    `+ other processes${c.redis ? " (Redis among them)" : ""} ${others.toFixed(0)}% of one ` +
    `core (${cores} cores): ${why}`;
}

/** A projected capacity, and what it was projected from. */
export interface Projection {
  /** Deliveries/s the form would hold with a free core per process. */
  deliveriesPerSecond: number;
  /** That over what its base held. */
  scaling: number;
  /** The rate both held, at which their CPU per delivery was compared. */
  rate: number;
}

/**
 * Projects the form's capacity with a free core per process: the base's measured capacity
 * times `processes x` the base's CPU per delivery over the form's, both taken at one rate both
 * held: the highest below the base's own best, where the base is not yet at its limit (at its
 * limit, queueing makes each delivery dearer). A process more than its base's can at most add
 * its base's capacity, so the scaling is capped at `processes`. Null without a common rate.
 */
export function projection(c: Comparison): Projection | null {
  const heldAt = (steps: Step[], rate: number): Step | undefined =>
    steps.find((s) => s.held && s.rate === rate);
  const base = bestStep(c.baseSteps);
  if (base === null) return null;
  const common = c.steps.filter((s) => s.held && heldAt(c.baseSteps, s.rate) !== undefined)
    .map((s) => s.rate).sort((a, b) => b - a);
  const rate = common.find((r) => r < base.rate) ?? common[0];
  if (rate === undefined) return null;
  const scaling = Math.min(
    c.processes,
    (c.processes * heldAt(c.baseSteps, rate)!.serverCpuUs) / heldAt(c.steps, rate)!.serverCpuUs,
  );
  return { deliveriesPerSecond: base.deliveriesPerSecond * scaling, scaling, rate };
}
