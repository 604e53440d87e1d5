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
import {
  type MasterScriptRunner,
  runScript,
  type ScriptRunner,
  scriptSha1,
} from "./_script_runner.ts";
import { INFO_ALLOWED } from "./_redis_stream_scripts.ts";

// What is at stake, and the two ways out: said at open and at run time alike.
const CONSEQUENCE = "without it a failover, or a restart from an older snapshot, could give " +
  "lost messages' offsets to new ones while clients are told their recovery was complete";
const ADVICE = "Grant it (ACL SETUSER <user> +info), or set REDIS_MASTER_CHECK=off " +
  "(checksMaster: false) to accept that";

/**
 * Rejects when the user of `client` may not run `INFO` from a script, as each publish does.
 * Through a script on the same runner, so the answer is the publish's: one server, the
 * Sentinels' master, or on a Cluster each master its slot map names (ACLs are per node; a
 * master that joins later is told at run time, see {@linkcode MasterCheckNotices}).
 */
export async function checkInfoAllowed(client: ScriptRunner, shownUrl: string): Promise<void> {
  const masters = client.eachMaster?.() ?? [];
  if (masters.length === 0) return throwIfRefused([await ask(client)], () => `at ${shownUrl}`);
  // Together: each is bounded by the runner's timeout, so one master away holds none of them.
  const answers = await Promise.all(masters.map(ask));
  throwIfRefused(answers, (named) => {
    const which = named.map((answer) => answer.address).join(", ");
    return `on ${named.length === 1 ? "master" : "masters"} ${which} of ${shownUrl}`;
  });
}

// What one server said: '' when its user may run INFO, else Redis's refusal; or why it did not.
type Answer = { address?: string; refusal?: string; failure?: Error };

async function ask(runner: ScriptRunner | MasterScriptRunner): Promise<Answer> {
  const address = "address" in runner ? runner.address : undefined;
  try {
    return { address, refusal: String(await probe(runner)) };
  } catch (error) {
    return { address, failure: error instanceof Error ? error : new Error(String(error)) };
  }
}

// A refusal is said first: it is certain, and what to do about it is known. `place` names the
// servers the message is about (on a Cluster, those that answered so).
function throwIfRefused(answers: Answer[], place: (named: Answer[]) => string): void {
  const refused = answers.filter(refusedInfo);
  if (refused.length > 0) {
    throw new Error(
      `The Redis user ${place(refused)} may not run INFO (an ACL without @dangerous): ` +
        `${CONSEQUENCE}. ${ADVICE} (Redis said: ${refused[0].refusal})`,
    );
  }
  const failed = answers.filter((answer) => answer.failure !== undefined);
  if (failed.length === 0) return;
  // Redis's own words name neither the server nor what was being checked.
  const said = failed.map((answer) =>
    (failed.length > 1 ? `${answer.address}: ` : "") + answer.failure!.message
  );
  throw new Error(
    `Could not check whether the Redis user ${place(failed)} may run INFO (the streams' ` +
      `master check, REDIS_MASTER_CHECK): ${said.join("; ")}`,
    { cause: failed[0].failure },
  );
}

// The probe as the publishes run their scripts: by SHA-1 (a user may have EVALSHA and not EVAL),
// its text once where the node does not know it.
async function probe(client: Pick<ScriptRunner, "run">): Promise<unknown> {
  return await runScript(
    client,
    { sha: await scriptSha1(INFO_ALLOWED), text: INFO_ALLOWED },
    [],
    [],
  );
}

// On a Cluster (`client.eachMaster`), what names the masters whose user may not run INFO now (one
// that does not answer is not named); elsewhere undefined: there is one server.
function refusingMasters(client: ScriptRunner): (() => Promise<string[]>) | undefined {
  const eachMaster = client.eachMaster;
  if (eachMaster === undefined) return undefined;
  return async () => {
    const answers = await Promise.all(eachMaster().map(ask));
    return answers.filter(refusedInfo).map((answer) => answer.address!);
  };
}

function refusedInfo(answer: Answer): boolean {
  return answer.refusal !== undefined && answer.refusal !== "";
}

// Said once per streams, naming the masters that refused when they are known (on a Cluster).
function warnNoLongerInfo(masters: string[]): void {
  const where = masters.length === 0
    ? ""
    : ` on ${masters.length === 1 ? "master" : "masters"} ${masters.join(", ")}`;
  log.warn(
    `The Redis user${where} may no longer run INFO (an ACL without @dangerous): publishes go on ` +
      `without the master check; ${CONSEQUENCE}. ${ADVICE}`,
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

// New epochs named one by one in a minute: after a failover every active room takes one, and a
// server with thousands of rooms must not write thousands of lines. The rest are counted.
const NEW_EPOCHS_NAMED = 5;
const NEW_EPOCH_WINDOW_MS = 60_000;

/**
 * Logs what a publish's script signalled: a refused INFO once per instance (a process has one),
 * however many publishes go without the check, on a Cluster naming the masters that refuse it;
 * each new epoch once, the publish that took it, the first {@linkcode NEW_EPOCHS_NAMED} of a
 * minute by name and the rest in one line at its end.
 */
export class MasterCheckNotices {
  #refusing: (() => Promise<string[]>) | undefined;
  #toldRefused = false;
  #closed = false;
  #windowStart = -Infinity;
  #named = 0;
  #unnamed = 0;
  #summary: ReturnType<typeof setTimeout> | undefined;

  /**
   * On a Cluster, where each master has its own ACL, the run-time warning names the masters of
   * `client` whose user may not run INFO.
   */
  constructor(client?: ScriptRunner) {
    this.#refusing = client && refusingMasters(client);
  }

  /** Called only when a publish's answer carries a signal (the rare path). */
  heard(group: string, signal: unknown, offset: number): void {
    if (signal === "no-info") {
      if (this.#toldRefused) return;
      this.#toldRefused = true;
      if (this.#refusing === undefined) return warnNoLongerInfo([]);
      // Which master refused is asked of them all (once): the one that joined at a reshard, say.
      this.#refusing().then(warnNoLongerInfo, () => warnNoLongerInfo([]));
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
        `Stream of "${group}" took a new epoch after a master change (a failover, a restart, ` +
          `or its Cluster slot moved): offsets after ${base} written to the old master may be ` +
          `lost; clients past ${base} are told their recovery is incomplete`,
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
