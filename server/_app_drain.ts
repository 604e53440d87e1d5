/**
 * How an app ends (`server/app.ts`): a drain closes its sockets with 1012 over a window, hands
 * presence over, then closes what the app owns; a close closes what it owns. One log line per
 * stage, none per socket.
 */
import type { LiveConnections } from "./live_connections.ts";
import type { Services } from "./context.ts";
import type { LayerKind } from "./_config_schema.ts";
import { CloseCode } from "./close_codes.ts";
import { log } from "../telemetry/log.ts";

/** Something the app started and stops when it closes: a history writer, a cache, a timer. */
export interface Closable {
  /** Stops it; the app waits for a returned promise before closing the next. */
  close(): void | Promise<void>;
}

/** How long a drain waits after its last close for clients to answer their close frames. */
export const DRAIN_LINGER_MS = 1000;

/** Closes what the app owns, the last started first; a failure is logged, the rest still close. */
export async function closeOwned(owns: readonly Closable[] = []): Promise<void> {
  for (const owned of [...owns].reverse()) {
    await Promise.resolve(owned.close()).catch((error) =>
      log.error("Could not close a part of the app", error)
    );
  }
}

/** Drains the app's sockets over `windowMs`, then its presence and what it owns. */
export async function drainApp(
  live: LiveConnections,
  services: Services,
  owns: readonly Closable[] | undefined,
  windowMs: number,
): Promise<void> {
  const started = performance.now();
  const count = live.size;
  const unfinished = await live.closeAll(CloseCode.SERVICE_RESTART, "Service restart", {
    windowMs,
    waitMs: DRAIN_LINGER_MS,
  });
  log.info(
    `Drain: ${count - unfinished} connection${count - unfinished === 1 ? "" : "s"} closed ` +
      "with 1012 in " +
      seconds(performance.now() - started) +
      (unfinished > 0 ? `; ${unfinished} did not answer their close frame` : ""),
  );
  // Closed with grace, so a user who reconnects to another process in time stays online.
  const published = await services.presence.close({ handOver: true });
  if (published) log.info(`Drain: presence ${PRESENCE_AT_DRAIN[services.config.layer]}`);
  else {
    // Said after the warning that says why: its entries expire in the backend meanwhile.
    log.warn(
      "Drain: presence's last changes were not published: the other processes were not told, " +
        "and this process's entries expire in the backend",
    );
  }
  await closeOwned(owns);
}

// What becomes of the process's presence at a drain, by layer. One process's own ends with it:
// there is no one to hand it to. `--workers` drain together: nobody takes it, and the entries
// expire in the shared backend.
const PRESENCE_AT_DRAIN: Readonly<Record<LayerKind, string>> = {
  memory: "closed (it is this process's own)",
  broadcast: "left to expire (the other Workers drain too)",
  redis: "handed over to the other processes, if any run",
  channels_redis: "handed over to the other processes, if any run",
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}
