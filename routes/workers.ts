/**
 * The site's background workers: named channels mapped to worker consumers (Channels'
 * `ChannelNameRouter`). The server runs the ones `IN_PROCESS_WORKERS` names in its own process
 * (by default all of them with the in-process layers, none with Redis);
 * `deno task worker dice` runs them as a process of their own.
 */
import { type ChannelNameRouter, channelNameRouter, type Config } from "../mod.ts";
import { DICE_CHANNEL, diceWorker } from "../consumers/dice_worker.ts";

/** The site's workers, by the channel each listens on. */
export function siteWorkers(config: Pick<Config, "historyWindow">): ChannelNameRouter {
  return channelNameRouter({ [DICE_CHANNEL]: diceWorker({ retention: config.historyWindow }) });
}
