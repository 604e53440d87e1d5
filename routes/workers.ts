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

/**
 * Throws the configuration error for an `IN_PROCESS_WORKERS` that names a channel the site has
 * no worker for; the configuration itself cannot tell, as it knows no app.
 */
export function checkInProcessWorkers(
  config: Pick<Config, "historyWindow" | "inProcessWorkers">,
): void {
  if (config.inProcessWorkers === "all") return;
  const known = siteWorkers(config).names;
  const unknown = config.inProcessWorkers.filter((name) => !known.includes(name));
  if (unknown.length === 0) return;
  const quoted = (names: readonly string[]) => names.map((name) => `"${name}"`).join(", ");
  throw new Error(
    `IN_PROCESS_WORKERS names no worker of this site: ${quoted(unknown)}; its channels are ` +
      `${quoted(known) || "none"} (or all, none)`,
  );
}
