/**
 * A Redis publish whose answer was lost may have been stored, and then nobody here (or, through
 * channels_redis, anywhere) was sent it. Once Redis answers again, it is looked for among the
 * group's latest events by its JSON and, when there, sent on as the publish would have; members
 * that had it already skip it by its offset.
 */
import { eventJson, freezeEvent } from "../event_json.ts";
import { log } from "../../telemetry/log.ts";
import { type StreamEvent, withoutReserved } from "./contract.ts";

/** When an unanswered publish is looked for in its stream, in ms. */
const SETTLE_RETRY_MS = [200, 500, 1000, 2000, 4000, 8000];
/** How many of the group's latest events it is looked for among. */
export const SETTLE_LOOKBACK = 100;

/** How the search reads the stream and sends on what it found. */
export interface SettleSteps {
  /** The group's latest {@linkcode SETTLE_LOOKBACK} events, oldest first or not. */
  latest(): Promise<StreamEvent[]>;
  /** Sends the stored event on, as its publish would have. */
  sendOn(event: StreamEvent): unknown;
  /** True once the streams close: the search stops. */
  closing(): boolean;
}

/**
 * Looks for the unanswered publish of `group` whose JSON without its opening brace is `body`,
 * several times, each later, and sends it on once found.
 */
export async function settleUnconfirmed(
  group: string,
  body: string,
  steps: SettleSteps,
): Promise<void> {
  for (const delay of SETTLE_RETRY_MS) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (steps.closing()) return;
    let events: StreamEvent[];
    try {
      events = await steps.latest();
    } catch {
      continue; // still away
    }
    const stored = events.find((event) => eventJson(withoutReserved(event)).slice(1) === body);
    // Not yet, perhaps: the script may still be on its way on a connection that was given up
    // (a reconnect's read can overtake it), so it is looked for again, each time later.
    if (stored === undefined) continue;
    try {
      await steps.sendOn(freezeEvent(stored));
    } catch (error) {
      log.warn(`A message stored without an answer to "${group}" could not be sent on`, error);
    }
    return;
  }
}
