/**
 * Saturation with batching clients: the saturation search (`saturation.ts`) in one room of
 * 100, where our clients opt in to batched frames (`?batch=1`: the frames queued for a socket
 * within one event-loop turn leave as one WebSocket frame, newline-delimited JSON). The load
 * generator splits each frame into its lines and counts and times every message, so a
 * delivery is one message to one client whichever way it travelled.
 *
 * Three searches per round, in alternating order: the raw server (which ignores the parameter:
 * one frame per message, as ever), ours with batching clients, and ours with plain clients.
 * Targets: batched ≥ 2x raw's sustainable deliveries/s, plain ≥ 0.9x raw.
 */
import {
  CHAT_PATH,
  type Check,
  ratio,
  roundOrder,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../_scenario.ts";
import { OURS, RAW, type ServerTarget } from "../_servers.ts";
import {
  type RoomShape,
  saturate,
  SATURATION_METRICS,
  saturationFigures,
  type Step,
  stepNote,
} from "./saturation.ts";

const ROOM_SIZE = 100;
const PLAIN: RoomShape = { size: ROOM_SIZE, pathTemplate: CHAT_PATH };
const BATCHED: RoomShape = { size: ROOM_SIZE, pathTemplate: `${CHAT_PATH}?batch=1` };

/** One search: a server, the clients it gets, and the name it is reported under. */
interface Search {
  name: string;
  target: ServerTarget;
  room: RoomShape;
}

const SEARCHES: Search[] = [
  { name: "raw", target: RAW, room: PLAIN },
  { name: "ours-batched", target: OURS, room: BATCHED },
  { name: "ours", target: OURS, room: PLAIN },
];

function check(
  figures: Record<string, Record<string, number>>,
  subject: string,
  limit: number,
): Check {
  const metric = "heldDeliveriesPerSecond";
  const value = ratio(
    figures[subject]?.[metric] ?? Number.NaN,
    figures.raw?.[metric] ?? Number.NaN,
  );
  return {
    name: `sustainable deliveries/s, ${subject} / raw`,
    scenario: "saturation-batched",
    value,
    comparison: ">=",
    limit,
    pass: value >= limit,
  };
}

/** The batched saturation scenario. */
export const saturationBatchedScenario: Scenario = {
  name: "saturation-batched",
  title: `Saturation, batching clients: 1 room x ${ROOM_SIZE}, ours with ?batch=1 and without`,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const steps = new Map<string, Step[]>(SEARCHES.map((search) => [search.name, []]));
    for (let round = 0; round < context.options.rounds; round++) {
      for (const search of roundOrder(SEARCHES, round)) {
        const found = await saturate(context, search.target, search.room, search.name);
        steps.get(search.name)!.push(...found);
      }
    }
    const figures: Record<string, Record<string, number>> = {};
    const notes: string[] = [];
    for (const [name, list] of steps) {
      figures[name] = saturationFigures(list);
      notes.push(stepNote(name, list));
    }
    return {
      name: "saturation-batched",
      title: this.title,
      metrics: SATURATION_METRICS,
      figures,
      servers: SEARCHES.map((search) => search.name),
      checks: [check(figures, "ours-batched", 2), check(figures, "ours", 0.9)],
      notes: [
        `every step: a fresh room of ${ROOM_SIZE} clients, 5 of them senders; ours-batched's ` +
        `clients connect with ?batch=1 and the generator splits each frame into its lines; ` +
        `${context.options.rounds} search(es) per server, the best kept`,
        ...notes,
      ],
    };
  },
};
