/**
 * How the Redis streams send their scripts (`EVALSHA`/`EVAL` with keys and arguments), and what
 * a failure means for a publish: a command written whose answer never came rejects with
 * {@linkcode UnansweredError}, since Redis may have run it; any other failure is a command
 * Redis did not run. A close answers the commands called before it first, so a graceful stop
 * loses none.
 *
 * One server by URL goes through the lean connection (`_resp_connection.ts`, with its linger);
 * Sentinels and a Cluster (which node owns a key, which one is master now) through node-redis.
 */
import {
  ClientClosedError,
  ClientOfflineError,
  ErrorReply,
  type RedisClusterType,
  RootNodesUnavailableError,
} from "redis";
import { RespConnection, UnansweredError } from "../_resp_connection.ts";
import { log } from "../../telemetry/log.ts";
import {
  closeRedis,
  connectRedis,
  isRedisCluster,
  type RedisClient,
  type RedisForm,
  withTimeout,
} from "../../storage/redis_connection.ts";

/** Runs script commands on Redis; see the module doc for what its rejections mean. */
export interface ScriptRunner {
  run(command: string[]): Promise<unknown>;
  close(): Promise<void>;
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
   * Script texts to load: the lean connection on every connect, before any other command (see
   * `RespConnectionOptions.setup`); node-redis at open, on every master.
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
  const scripts = options.scripts ?? [];
  await withTimeout(loadScripts(client, isRedisCluster(target), scripts), replyTimeoutMs, NO_ANSWER)
    .catch((error) => log.warn(`Redis streams: scripts not loaded at open (${error.message})`));
  return nodeRedisScriptRunner(client, replyTimeoutMs);
}

// Loaded at open on the master (Sentinel) or on every master (Cluster), so that the first
// publishes are not answered NOSCRIPT. Not needed to work: a master that lacks them (down at
// open, promoted later, or an ACL without SCRIPT) learns each from its first NOSCRIPT answer.
async function loadScripts(
  client: RedisClient,
  cluster: boolean,
  scripts: readonly string[],
): Promise<void> {
  if (!cluster) {
    for (const script of scripts) await client.scriptLoad(script);
    return;
  }
  const nodes = client as unknown as RedisClusterType;
  await Promise.all(nodes.masters.map(async (master) => {
    const node = await nodes.nodeClient(master);
    for (const script of scripts) await node.scriptLoad(script);
  }));
}

/**
 * Script commands through a connected node-redis client (any form), which this runner closes.
 * node-redis fails the commands it wrote with the socket's own error when the connection goes
 * (or its Sentinel's master, or a Cluster node): those are unanswered, as is a command past
 * `timeoutMs` (node-redis may still write it once it reconnects). Only what it refused before
 * writing, and Redis's own error replies, are plain failures.
 */
export function nodeRedisScriptRunner(client: RedisClient, timeoutMs: number): ScriptRunner {
  // node-redis's Sentinel and Cluster clients fail a command still on its way when closed:
  // a close waits for the calls under way (each has its timeout).
  let running = 0;
  let idle: (() => void) | null = null;
  return {
    run: async ([name, script, count, ...rest]) => {
      const keys = rest.slice(0, Number(count));
      const options = { keys, arguments: rest.slice(keys.length) };
      running++;
      try {
        const sent = name === "EVALSHA"
          ? client.evalSha(script, options)
          : client.eval(script, options);
        return await withTimeout(sent, timeoutMs, NO_ANSWER);
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

// Redis answered with an error, or node-redis refused the command before writing it.
function neverWritten(error: unknown): boolean {
  return error instanceof ErrorReply || error instanceof ClientClosedError ||
    error instanceof ClientOfflineError || error instanceof RootNodesUnavailableError;
}

function describe(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  return message === NO_ANSWER ? NO_ANSWER : `no answer: ${message}`;
}
