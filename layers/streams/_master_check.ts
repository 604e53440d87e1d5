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
import { type ScriptRunner, scriptSha1 } from "./_script_runner.ts";
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
  let refusal;
  try {
    refusal = await probe(client);
  } catch (error) {
    // Redis's own words name neither the server nor what was being checked.
    const said = (error as Error)?.message ?? String(error);
    throw new Error(
      `Could not check whether the Redis user at ${shownUrl} may run INFO (the streams' ` +
        `master check, REDIS_MASTER_CHECK): ${said}`,
      { cause: error },
    );
  }
  if (refusal === "") return;
  throw new Error(
    `The Redis user at ${shownUrl} may not run INFO (an ACL without @dangerous): ` +
      `${CONSEQUENCE}. ${ADVICE} (Redis said: ${refusal})`,
  );
}

// The probe as the publishes run their scripts: by SHA-1 (a user may have EVALSHA and not EVAL),
// its text once where the node does not know it.
async function probe(client: ScriptRunner): Promise<unknown> {
  try {
    return await client.run(["EVALSHA", await scriptSha1(INFO_ALLOWED), "0"]);
  } catch (error) {
    if (!/NOSCRIPT/.test(String((error as Error)?.message))) throw error;
    return await client.run(["EVAL", INFO_ALLOWED, "0"]);
  }
}

/** The one line at open that says what streams without the check give up. */
export function warnCheckOff(shownUrl: string): void {
  log.warn(
    `Streams on Redis at ${shownUrl} do not check their master (REDIS_MASTER_CHECK=off): ` +
      "after a failover, or a restart from an older snapshot, offsets of lost messages may be " +
      "given to new ones, and clients told their recovery was complete",
  );
}

// New epochs named one by one in a minute: after a failover every active room takes one, and a
// server with thousands of rooms must not write thousands of lines. The rest are counted.
const NEW_EPOCHS_NAMED = 5;
const NEW_EPOCH_WINDOW_MS = 60_000;

/**
 * Logs what a publish's script signalled: a refused INFO once per instance (a process has one),
 * however many publishes go without the check; each new epoch once, the publish that took it,
 * the first {@linkcode NEW_EPOCHS_NAMED} of a minute by name and the rest in one line at its end.
 */
export class MasterCheckNotices {
  #toldRefused = false;
  #closed = false;
  #windowStart = -Infinity;
  #named = 0;
  #unnamed = 0;
  #summary: ReturnType<typeof setTimeout> | undefined;

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
      this.#newEpoch(group, offset - 1);
    }
  }

  /** Writes the count of new epochs not yet named; what is heard after it is written at once. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#summary);
    this.#summarize();
  }

  #newEpoch(group: string, base: number): void {
    const now = Date.now();
    if (now - this.#windowStart >= NEW_EPOCH_WINDOW_MS) {
      this.#windowStart = now;
      this.#named = 0;
    }
    if (this.#named < NEW_EPOCHS_NAMED) {
      this.#named++;
      log.warn(
        `Stream of "${group}" took a new epoch after a master change: offsets after ${base} ` +
          `written to the old master may be lost; clients past ${base} are told their ` +
          "recovery is incomplete",
      );
      return;
    }
    this.#unnamed++;
    if (this.#closed) return this.#summarize(); // no timer may outlive the streams
    if (this.#summary !== undefined) return;
    const wait = this.#windowStart + NEW_EPOCH_WINDOW_MS - now;
    this.#summary = setTimeout(() => this.#summarize(), wait);
    Deno.unrefTimer(this.#summary); // a summary never holds the process open
  }

  #summarize(): void {
    this.#summary = undefined;
    if (this.#unnamed === 0) return;
    log.warn(
      `${this.#unnamed} more stream(s) took a new epoch after a master change in the last ` +
        "minute: clients past their old master's last offset are told their recovery is incomplete",
    );
    this.#unnamed = 0;
  }
}
