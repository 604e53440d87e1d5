/**
 * A read a socket needs after an outage of the layer (its session, what it missed), tried again
 * while the backends come back: a Redis outage's connections return one by one, so the store
 * or the streams may still be away when the layer's subscription is back.
 */
import type { Connection } from "./consumer.ts";
import { CloseCode } from "./close_codes.ts";
import { log } from "../telemetry/log.ts";

/** How long each try waits before it runs: 8 s in all. */
const WAITS_MS = [0, 250, 500, 1000, 2000, 4000];

/**
 * Runs `attempt` until it resolves, waiting before each try, while `conn` is open. When no try
 * works, `failure` is logged with the last error and the socket closes with 1013 and `reason`:
 * its client reconnects, and the handshake and the recovery check what this could not.
 */
export async function throughOutage(
  conn: Connection,
  attempt: () => Promise<void>,
  failure: { log: string; reason: string },
): Promise<void> {
  let error: unknown;
  for (const waitMs of WAITS_MS) {
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    if (conn.closed) return;
    try {
      return await attempt();
    } catch (thrown) {
      error = thrown;
    }
  }
  log.warn(failure.log, error);
  conn.close(CloseCode.TRY_AGAIN_LATER, failure.reason);
}
