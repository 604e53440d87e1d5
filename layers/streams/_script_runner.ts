/**
 * How the Redis streams send their scripts (`EVALSHA`/`EVAL` with keys and arguments), and what
 * a failure means for a publish: a command written whose answer never came rejects with
 * {@linkcode UnansweredError}, since Redis may have run it; any other failure is a command
 * Redis did not run. A close answers the commands called before it first, so a graceful stop
 * loses none.
 *
 * One server by URL goes through the lean connection (`_resp_connection.ts`, with its linger),
 * which loads the scripts on every connect, so `EVALSHA` finds them. Sentinels and a Cluster
 * (which node owns a key, which one is master now) go through node-redis, and each script is
 * sent with its text (`EVAL`): a master that lacks it (a replica just promoted, since `SCRIPT
 * LOAD` is not replicated; a node restarted empty) would answer `NOSCRIPT`, and the retries of
 * the publishes in flight then would go out behind later ones, which node-redis's Sentinel
 * client writes first (a planned failover stored one sender's acked messages up to 95 apart).
 * Through Sentinels each script also goes through `_sentinel_sender.ts`, which keeps a script
 * that waited for a master from being written after later ones, or after its timeout.
 */
import {
  ClientClosedError,
  ClientOfflineError,
  ErrorReply,
  RootNodesUnavailableError,
} from "redis";
import { RespConnection } from "../_resp_connection.ts";
import { UnansweredError } from "../_resp_errors.ts";
import { NotSentError, type SentinelCommands, sentinelSender } from "./_sentinel_sender.ts";
import {
  closeRedis,
  connectRedis,
  type RedisClient,
  type RedisForm,
  withTimeout,
} from "../../storage/redis_connection.ts";

/** Runs script commands on Redis; see the module doc for what its rejections mean. */
export interface ScriptRunner {
  /** `read`: the script writes nothing, so it need not keep its place among writes. */
  run(command: string[], options?: { read?: boolean }): Promise<unknown>;
  close(): Promise<void>;
  /**
   * On a Cluster only: a runner for each master its slot map names now, since what a script may
   * do (the ACL) is set per node. Each call rejects after the runner's timeout, connecting
   * included (a master that is away is not waited for).
   */
  eachMaster?(): MasterScriptRunner[];
}

/** Runs script commands on one master of a Cluster (see `ScriptRunner.eachMaster`). */
export interface MasterScriptRunner {
  /** Its `host:port`, as the cluster names it. */
  address: string;
  run(command: string[]): Promise<unknown>;
}

/** Where and how a script runner connects. */
export interface ScriptRunnerOptions {
  /** A command not answered within this time rejects with `UnansweredError` (default 3 s). */
  timeoutMs?: number;
  /** The first connect fails after this long (default 5 s). */
  connectTimeoutMs?: number;
  /** The lean connection's linger (one server by URL only; see `RedisStreamsOptions`). */
  lingerMs?: number;
  /**
   * The scripts' texts: the lean connection loads them on every connect, before any other
   * command (see `RespConnectionOptions.setup`); node-redis sends a script's text in place of
   * its SHA-1.
   */
  scripts?: readonly string[];
}

// What a command whose answer is later than the timeout rejects with.
const NO_ANSWER = "no answer in time";

/** Connects to `target`: the lean connection for one server by URL, node-redis otherwise. */
export async function openScriptRunner(
  target: string | RedisForm,
  options: ScriptRunnerOptions = {},
): Promise<ScriptRunner> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const replyTimeoutMs = options.timeoutMs ?? 3000;
  const url = typeof target === "string" ? target : target.kind === "url" ? target.url : null;
  if (url !== null && RespConnection.canReach(url)) {
    const connection = await RespConnection.open(url, {
      name: "streams",
      connectTimeoutMs,
      replyTimeoutMs,
      lingerMs: options.lingerMs,
      setup: (options.scripts ?? []).map((script) => ["SCRIPT", "LOAD", script]),
    });
    return { run: (command) => connection.call(command), close: () => connection.close() };
  }
  // A script written before a lost master may have run: sent again, it would be stored twice.
  const client = await connectRedis(target, {
    name: "streams",
    connectTimeoutMs,
    resendAfterLostMaster: false,
  });
  const texts = new Map<string, string>();
  for (const script of options.scripts ?? []) texts.set(await scriptSha1(script), script);
  const kind = typeof target === "object" ? target.kind : "url";
  const runner = nodeRedisScriptRunner(client, replyTimeoutMs, texts, {
    sentinel: kind === "sentinel",
  });
  if (kind !== "cluster") return runner;
  return { ...runner, eachMaster: () => masterRunners(client, replyTimeoutMs, texts) };
}

/**
 * Runs the script `text` (whose SHA-1 is `sha`) on `keys` with `args`: by `EVALSHA`, and by its
 * text once where the node does not know it (`NOSCRIPT`: a replica just promoted, a node
 * restarted empty), which caches it there.
 */
export async function runScript(
  client: Pick<ScriptRunner, "run">,
  script: { sha: string; text: string },
  keys: readonly string[],
  args: readonly string[],
  options?: { read?: boolean },
): Promise<unknown> {
  try {
    return await client.run(
      ["EVALSHA", script.sha, String(keys.length), ...keys, ...args],
      options,
    );
  } catch (error) {
    if (!/NOSCRIPT/.test(String((error as Error)?.message))) throw error;
    return await client.run(["EVAL", script.text, String(keys.length), ...keys, ...args], options);
  }
}

/** A script's SHA-1, in hex: its name for `EVALSHA`. */
export async function scriptSha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Script commands through a connected node-redis client (any form), which this runner closes.
 * An `EVALSHA` of a script in `texts` (by SHA-1) is sent as `EVAL` with its text (see the
 * module doc: order over a failover).
 * node-redis fails the commands it wrote with the socket's own error when the connection goes
 * (or its Sentinel's master, or a Cluster node): those are unanswered, as is a command past
 * `timeoutMs` (node-redis may still write it once it reconnects). Only what it refused before
 * writing, and Redis's own error replies, are plain failures. With `sentinel`, `client` is a
 * Sentinel client, and a script past `timeoutMs` that was never written never will be (a plain
 * failure too).
 */
export function nodeRedisScriptRunner(
  client: RedisClient,
  timeoutMs: number,
  texts: ReadonlyMap<string, string> = new Map(),
  options: { sentinel?: boolean } = {},
): ScriptRunner {
  const toMaster = options.sentinel
    ? sentinelSender(client as unknown as SentinelCommands, NO_ANSWER)
    : null;
  // node-redis's Sentinel and Cluster clients fail a command still on its way when closed:
  // a close waits for the calls under way (each has its timeout).
  let running = 0;
  let idle: (() => void) | null = null;
  return {
    run: async ([name, script, count, ...rest], runOptions) => {
      const keys = rest.slice(0, Number(count));
      const options = { keys, arguments: rest.slice(keys.length) };
      running++;
      try {
        const text = name === "EVALSHA" ? texts.get(script) : script;
        if (toMaster !== null) {
          const command = text === undefined ? ["EVALSHA", script] : ["EVAL", text];
          return await toMaster([...command, count, ...rest], timeoutMs, runOptions);
        }
        return await withTimeout(callScript(client, text, script, options), timeoutMs, NO_ANSWER);
      } catch (error) {
        throw neverWritten(error) ? error : new UnansweredError(describe(error), { cause: error });
      } finally {
        if (--running === 0) idle?.();
      }
    },
    close: async () => {
      if (running > 0) await new Promise<void>((resolve) => idle = resolve);
      await closeRedis(client);
    },
  };
}

// The parts of node-redis's Cluster client that name its masters and reach each one.
interface ClusterMasters {
  masters: { address: string }[];
  nodeClient(node: { address: string }): Promise<RedisClient>;
}

// One runner per master of the Cluster `client`, bounded as a whole: a master's client may still
// be connecting, and node-redis retries that for ever.
function masterRunners(
  client: RedisClient,
  timeoutMs: number,
  texts: ReadonlyMap<string, string>,
): MasterScriptRunner[] {
  const cluster = client as unknown as ClusterMasters;
  return cluster.masters.map((node) => ({
    address: node.address,
    run: ([name, script, count, ...rest]) => {
      const keys = rest.slice(0, Number(count));
      const options = { keys, arguments: rest.slice(keys.length) };
      const text = name === "EVALSHA" ? texts.get(script) : script;
      const sent = cluster.nodeClient(node)
        .then((nodeClient) => callScript(nodeClient, text, script, options));
      return withTimeout(sent, timeoutMs, NO_ANSWER);
    },
  }));
}

// A script by its text when it is known (`text`), else by its SHA-1 (`script`).
function callScript(
  client: RedisClient,
  text: string | undefined,
  script: string,
  options: { keys: string[]; arguments: string[] },
): Promise<unknown> {
  return text === undefined ? client.evalSha(script, options) : client.eval(text, options);
}

// Redis answered with an error, or node-redis refused the command before writing it.
function neverWritten(error: unknown): boolean {
  return error instanceof ErrorReply || error instanceof ClientClosedError ||
    error instanceof ClientOfflineError || error instanceof RootNodesUnavailableError ||
    error instanceof NotSentError;
}

function describe(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  return message === NO_ANSWER ? NO_ANSWER : `no answer: ${message}`;
}
