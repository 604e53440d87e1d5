/**
 * The scenario registry: `deno task bench` runs these in order; `--only a,b` picks by name.
 * A new scenario (a presence storm, the Redis layer) is one more object in this array.
 */
import { kvCommitsScenario } from "./kv_commits.ts";
import type { Scenario } from "../_scenario.ts";
import { CPU_LIMIT, FANOUT_LOAD, fixedRateScenario, ROOMS_LOAD } from "./fixed_rate.ts";
import { saturationScenario } from "./saturation.ts";
import { saturationBatchedScenario } from "./saturation_batched.ts";
import { idleScenario } from "./idle.ts";
import { coldStartScenario } from "./cold_start.ts";
import { overloadScenario } from "./overload.ts";
import { presenceStormScenario } from "../presence_storm.ts";
import { scaleFanoutScenario, scaleSaturationScenario } from "./scale_out.ts";
import { reconnectStormScenario } from "./reconnect_storm.ts";
import { daphneScenario } from "./daphne.ts";
import { metricsCostScenario } from "./metrics_cost.ts";

/** Every scenario, in the order they run. */
export const SCENARIOS: Scenario[] = [
  fixedRateScenario({
    name: "fanout",
    title: "Fan-out: 1 room x 200 clients, 5 senders, 100 messages/s (20,000 deliveries/s)",
    ...FANOUT_LOAD,
    paired: true,
    cpuLimit: CPU_LIMIT.fanout,
  }),
  fixedRateScenario({
    name: "rooms",
    title: "Rooms: 50 rooms x 10 clients, 500 messages/s (5,000 deliveries/s)",
    ...ROOMS_LOAD,
    paired: true,
    cpuLimit: CPU_LIMIT.rooms,
  }),
  fixedRateScenario({
    name: "relay-rooms",
    title: "The framework alone, rooms: 50 groups x 10 clients of the group chat by URL, " +
      "500 messages/s, each relayed unchanged (no offsets, no history)",
    ...ROOMS_LOAD,
    paired: true,
    relay: true,
  }),
  fixedRateScenario({
    name: "redis-fanout",
    title: "Redis layer, fan-out: 1 room x 200 clients, 5 senders, 100 messages/s",
    ...FANOUT_LOAD,
    paired: true,
    redis: true,
    cpuLimit: CPU_LIMIT.redis,
  }),
  fixedRateScenario({
    name: "redis-fanout-no-linger",
    title: "Redis layer, fan-out, with REDIS_LINGER_MS=0 (the linger off; not the default): " +
      "1 room x 200 clients, 5 senders, 100 messages/s",
    ...FANOUT_LOAD,
    paired: true,
    redis: true,
    cpuLimit: CPU_LIMIT.redis,
    redisLingerMs: 0,
  }),
  fixedRateScenario({
    name: "redis-rooms",
    title: "Redis layer, rooms: 50 rooms x 10 clients, 500 messages/s",
    ...ROOMS_LOAD,
    paired: true,
    redis: true,
    cpuLimit: CPU_LIMIT.redis,
  }),
  fixedRateScenario({
    name: "redis-rooms-no-linger",
    title: "Redis layer, rooms, with REDIS_LINGER_MS=0 (the linger off; not the default): " +
      "50 rooms x 10 clients, 500 messages/s",
    ...ROOMS_LOAD,
    paired: true,
    redis: true,
    cpuLimit: CPU_LIMIT.redis,
    redisLingerMs: 0,
  }),
  metricsCostScenario,
  coldStartScenario,
  saturationScenario,
  saturationBatchedScenario,
  idleScenario,
  overloadScenario,
  presenceStormScenario,
  scaleFanoutScenario,
  scaleSaturationScenario,
  reconnectStormScenario,
  kvCommitsScenario,
  daphneScenario,
];
