/**
 * What the Redis streams say about their master check (`RedisStreamsOptions.checksMaster`):
 * whether the Redis user may run it at all, checked once at open; that it is off; that it was
 * refused at run time (an ACL changed after open); and each new epoch a master change gave a
 * stream. Each publish runs `INFO replication` in its script (`_redis_stream_scripts.ts`), and a
 * user without it (the common hardening `+@all -@dangerous`) would publish without the check,
 * unseen: after a failover, or a restart from an older snapshot, clients would be told their
 * recovery was complete while messages were lost.
 */
import { log } from "../../telemetry/log.ts";
import type { ScriptRunner } from "./_script_runner.ts";
import { INFO_ALLOWED } from "./_redis_stream_scripts.ts";

// What is at stake, and the two ways out: said at open and at run time alike.
const CONSEQUENCE = "without it a failover, or a restart from an older snapshot, could give " +
  "lost messages' offsets to new ones while clients are told their recovery was complete";
const ADVICE = "Grant it (ACL SETUSER <user> +info), or set REDIS_MASTER_CHECK=off " +
  "(checksMaster: false) to accept that";

/**
 * Rejects when the user of `client` may not run `INFO` from a script, as each publish does.
 * Through a script on the same runner, so the answer is the publish's: one server, the
 * Sentinels' master, or on a Cluster whichever node node-redis picks for a keyless script (ACLs
 * are per node: a node set otherwise is told at run time, see {@linkcode MasterCheckNotices}).
 */
export async function checkInfoAllowed(client: ScriptRunner, shownUrl: string): Promise<void> {
  const refusal = await client.run(["EVAL", INFO_ALLOWED, "0"]);
  if (refusal === "") return;
  throw new Error(
    `The Redis user at ${shownUrl} may not run INFO (an ACL without @dangerous): ` +
      `${CONSEQUENCE}. ${ADVICE} (Redis said: ${refusal})`,
  );
}

/** The one line at open that says what streams without the check give up. */
export function warnCheckOff(shownUrl: string): void {
  log.warn(
    `Streams on Redis at ${shownUrl} do not check their master (REDIS_MASTER_CHECK=off): ` +
      "after a failover, or a restart from an older snapshot, offsets of lost messages may be " +
      "given to new ones, and clients told their recovery was complete",
  );
}

/**
 * Logs what a publish's script signalled: a refused INFO once per instance (a process has one),
 * however many publishes go without the check; each new epoch once, the publish that took it.
 */
export class MasterCheckNotices {
  #toldRefused = false;

  /** Called only when a publish's answer carries a signal (the rare path). */
  heard(group: string, signal: unknown, offset: number): void {
    if (signal === "no-info") {
      if (this.#toldRefused) return;
      this.#toldRefused = true;
      log.warn(
        `The Redis user may no longer run INFO (an ACL without @dangerous): publishes go on ` +
          `without the master check; ${CONSEQUENCE}. ${ADVICE}`,
      );
    } else if (signal === "new-epoch") {
      const base = offset - 1;
      log.warn(
        `Stream of "${group}" took a new epoch after a master change: offsets after ${base} ` +
          `written to the old master may be lost; clients past ${base} are told their ` +
          "recovery is incomplete",
      );
    }
  }
}
