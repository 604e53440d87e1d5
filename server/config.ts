import type { LogLevel } from "../telemetry/log.ts";
import type { RedisForm, RedisNodeAddress } from "../storage/redis_connection.ts";
import { MIN_PASSWORD_ITERATIONS } from "../auth/passwords.ts";

/** Which group layer carries events between connections and processes. */
export type LayerKind = "memory" | "broadcast" | "redis" | "channels_redis";

/** Everything the server can be told at start. See the README's configuration table. */
export interface Config {
  /** The address to listen on (`HOST`). */
  host: string;
  /** The port to listen on; 0 picks a free one (`PORT`). */
  port: number;
  /** Where the Deno KV file is kept (`DATA_DIR`). */
  dataDir: string;
  /** The group layer, which also decides the store and presence (`LAYER`). */
  layer: LayerKind;
  /** The Redis that `LAYER=redis` connects to; may carry a password (`REDIS_URL`). */
  redisUrl: string;
  /** Starts every shared key and channel name, so apps can share one Redis (`REDIS_PREFIX`). */
  redisPrefix: string;
  /**
   * Which Redis the Redis layers use: one server (`REDIS_URL`, the default), a master found
   * through Sentinels (`REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`) or a Cluster
   * (`REDIS_CLUSTER`); `REDIS_PASSWORD` for the last two.
   */
  redisForm: RedisForm;
  /**
   * Under load, how long a chat message's Redis script may wait to share one round trip with
   * the next ones, in ms (`REDIS_LINGER_MS`, 0 to 100; default
   * {@linkcode DEFAULT_REDIS_LINGER_MS}; 0: never). One server by URL only. Trades latency
   * under load for CPU of this server and of Redis (see the README).
   */
  redisLingerMs: number;
  /** Hosts a WebSocket's Origin may name; empty means "the host the request came to". */
  allowedHosts: string[];
  /** Trust `X-Forwarded-Proto` and `X-Forwarded-For` from a reverse proxy. */
  trustProxy: boolean;
  /** Largest WebSocket frame a client may send, in bytes (`MAX_MESSAGE_BYTES`). */
  maxMessageBytes: number;
  /** Messages per second a socket may send on average, and the burst above that. */
  rateLimit: { perSecond: number; burst: number };
  /** Events a connection may have waiting for its handlers before it drops more. */
  channelCapacity: number;
  /** Bytes a connection may have unsent before events to it are dropped. */
  maxBufferedBytes: number;
  /** Session lifetime in seconds: the cookie's `Max-Age` and the record's expiry. */
  sessionMaxAgeSeconds: number;
  /** PBKDF2 iterations for new password hashes; at least 600,000 unless weak hashing is allowed. */
  passwordIterations: number;
  /** Tests only: allows `passwordIterations` below 600,000. Never set it in production. */
  allowWeakPasswordHashing: boolean;
  /** Failed logins allowed per username and per client address within `windowSeconds`. */
  loginThrottle: { perUsername: number; perAddress: number; windowSeconds: number };
  /**
   * Sign-ups (each a slow password hash and an account kept for good) allowed from one client
   * address within `windowSeconds` (`SIGNUP_MAX_PER_ADDRESS`, `SIGNUP_WINDOW`).
   */
  signUpThrottle: { perAddress: number; windowSeconds: number };
  /** How long a closed presence socket keeps its user online (reloads do not flicker), in ms. */
  presenceGraceMs: number;
  /**
   * On SIGTERM, sockets are closed with 1012 spread over this many ms (`DRAIN_WINDOW_MS`), so
   * clients reconnect elsewhere without a stampede; 0 closes them all at once.
   */
  drainWindowMs: number;
  /** Secret for `POST /_send/`; the endpoint is off when empty. */
  sendToken: string;
  /**
   * The background workers the server runs in its own process (`IN_PROCESS_WORKERS`: `all`,
   * `none`, or channel names separated by commas). Default: `all` with the in-process layers
   * (`memory`, `broadcast`), `none` with Redis, where `deno task worker <channel>` runs them.
   */
  inProcessWorkers: "all" | string[];
  /**
   * Bearer token for `GET /metrics` on the app's own port (`METRICS_TOKEN`); empty: the route
   * does not exist (404), unless `metricsAddress` serves it elsewhere.
   */
  metricsToken: string;
  /**
   * A second listen address that serves only `GET /metrics`, without a token
   * (`METRICS_ADDRESS=127.0.0.1:9100`); `null`: none.
   */
  metricsAddress: { hostname: string; port: number } | null;
  /**
   * What a chat room's stream keeps for recovery: its last `messages` and everything younger
   * than `seconds`, whichever is more (`HISTORY_WINDOW_MESSAGES`, `HISTORY_WINDOW_SECONDS`).
   */
  historyWindow: { messages: number; seconds: number };
  /**
   * The most the in-process streams keep of every room together, in MiB of JSON text
   * (`HISTORY_MEMORY_MB`): past it the largest rooms lose their oldest messages first, whatever
   * `historyWindow` says, so that no number of rooms can take all the memory.
   */
  historyMemoryMb: number;
  /**
   * Signs access tokens (`TOKEN_SECRET`, at least 32 characters). Empty: one is generated at
   * first use and kept in the store, so every process on that store agrees. Never logged.
   */
  tokenSecret: string;
  /** How long a new access token lives, in seconds (`TOKEN_MAX_AGE`). */
  tokenMaxAgeSeconds: number;
  /** Open WebSockets one client address may hold in this process; 0 is no cap. */
  maxConnectionsPerAddress: number;
  /** Open WebSockets one signed-in user may hold in this process; 0 is no cap. */
  maxConnectionsPerUser: number;
  /** Workers that serve on one port (`--workers N`; `auto` is one per core). */
  workers: number;
  /** The least severe level that is logged (`LOG_LEVEL`). */
  logLevel: LogLevel;
}

/**
 * The Redis linger by default, in ms: under load, Redis's and this server's CPU per chat
 * message fall by about a quarter, for about this much latency (see the README's "The Redis
 * linger"). Callers that await each answer are held once in about 33 writes, not for each:
 * the linger holds only while it pays.
 */
export const DEFAULT_REDIS_LINGER_MS = 10;

/**
 * Why `REDIS_LINGER_MS` does nothing with `config`, or null where it applies: only the Redis
 * streams' lean connection (one server by URL) lingers.
 */
export function redisLingerIgnoredBecause(
  config: Pick<Config, "layer" | "redisForm">,
): string | null {
  if (config.layer !== "redis" && config.layer !== "channels_redis") {
    return `LAYER=${config.layer} does not use Redis`;
  }
  if (config.redisForm.kind !== "url") return "it applies to one Redis server by URL only";
  return null;
}

/** The embedded defaults: `deno task start` needs nothing else. */
export const DEFAULT_CONFIG: Readonly<Config> = {
  host: "127.0.0.1",
  port: 8000,
  dataDir: "./data",
  layer: "memory",
  redisUrl: "redis://127.0.0.1:6379",
  redisPrefix: "channels",
  redisForm: { kind: "url", url: "redis://127.0.0.1:6379" },
  redisLingerMs: DEFAULT_REDIS_LINGER_MS,
  allowedHosts: [],
  trustProxy: false,
  maxMessageBytes: 64 * 1024,
  rateLimit: { perSecond: 20, burst: 40 },
  channelCapacity: 100,
  maxBufferedBytes: 256 * 1024,
  sessionMaxAgeSeconds: 14 * 24 * 3600,
  passwordIterations: 600_000,
  allowWeakPasswordHashing: false,
  loginThrottle: { perUsername: 5, perAddress: 20, windowSeconds: 15 * 60 },
  signUpThrottle: { perAddress: 20, windowSeconds: 3600 },
  presenceGraceMs: 3000,
  drainWindowMs: 5000,
  sendToken: "",
  inProcessWorkers: "all",
  metricsToken: "",
  metricsAddress: null,
  historyWindow: { messages: 1000, seconds: 600 },
  historyMemoryMb: 256,
  tokenSecret: "",
  tokenMaxAgeSeconds: 30 * 24 * 3600,
  maxConnectionsPerAddress: 256,
  maxConnectionsPerUser: 64,
  workers: 1,
  logLevel: "info",
};

/** Environment variables by name, as `Deno.env.toObject()` returns them. */
export type Env = Record<string, string | undefined>;

/**
 * Reads the configuration from command-line flags, then environment variables, then the
 * defaults. Throws an `Error` that names the setting when a value is invalid.
 *
 * @example
 * ```ts
 * const config = loadConfig(["--port", "9000"], Deno.env.toObject());
 * ```
 */
export function loadConfig(args: string[], env: Env, options: { cores?: number } = {}): Config {
  const flags = parseFlags(args);
  const known = new Set<string>();
  const pick = (flag: string, name: string): string | undefined => {
    known.add(flag);
    return flags.get(flag) ?? env[name];
  };
  const d = DEFAULT_CONFIG;
  const config: Config = {
    host: pick("host", "HOST") ?? d.host,
    port: integer("PORT", pick("port", "PORT"), d.port, 0, 65535),
    dataDir: pick("data-dir", "DATA_DIR") ?? d.dataDir,
    layer: layerKind(pick("layer", "LAYER") ?? d.layer),
    redisUrl: pick("redis-url", "REDIS_URL") ?? d.redisUrl,
    redisPrefix: pick("redis-prefix", "REDIS_PREFIX") ?? d.redisPrefix,
    redisForm: redisForm(pick, env, layerKind(pick("layer", "LAYER") ?? d.layer)),
    redisLingerMs: integer(
      "REDIS_LINGER_MS",
      pick("redis-linger-ms", "REDIS_LINGER_MS"),
      d.redisLingerMs,
      0,
      100,
    ),
    allowedHosts: list(pick("allowed-hosts", "ALLOWED_HOSTS")),
    trustProxy: boolean("TRUST_PROXY", pick("trust-proxy", "TRUST_PROXY"), d.trustProxy),
    maxMessageBytes: integer("MAX_MESSAGE_BYTES", env.MAX_MESSAGE_BYTES, d.maxMessageBytes, 1),
    rateLimit: {
      perSecond: integer("RATE_LIMIT", env.RATE_LIMIT, d.rateLimit.perSecond, 1),
      burst: integer("RATE_BURST", env.RATE_BURST, d.rateLimit.burst, 1),
    },
    channelCapacity: integer("CHANNEL_CAPACITY", env.CHANNEL_CAPACITY, d.channelCapacity, 1),
    maxBufferedBytes: integer("MAX_BUFFERED_BYTES", env.MAX_BUFFERED_BYTES, d.maxBufferedBytes, 1),
    sessionMaxAgeSeconds: integer(
      "SESSION_MAX_AGE",
      env.SESSION_MAX_AGE,
      d.sessionMaxAgeSeconds,
      1,
    ),
    ...passwordHashing(env),
    loginThrottle: {
      perUsername: integer(
        "LOGIN_MAX_FAILURES",
        env.LOGIN_MAX_FAILURES,
        d.loginThrottle.perUsername,
        1,
      ),
      perAddress: integer(
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        env.LOGIN_MAX_FAILURES_PER_ADDRESS,
        d.loginThrottle.perAddress,
        1,
      ),
      windowSeconds: integer(
        "LOGIN_FAILURE_WINDOW",
        env.LOGIN_FAILURE_WINDOW,
        d.loginThrottle.windowSeconds,
        1,
      ),
    },
    signUpThrottle: {
      perAddress: integer(
        "SIGNUP_MAX_PER_ADDRESS",
        env.SIGNUP_MAX_PER_ADDRESS,
        d.signUpThrottle.perAddress,
        1,
      ),
      windowSeconds: integer("SIGNUP_WINDOW", env.SIGNUP_WINDOW, d.signUpThrottle.windowSeconds, 1),
    },
    presenceGraceMs: integer(
      "PRESENCE_GRACE_MS",
      env.PRESENCE_GRACE_MS,
      d.presenceGraceMs,
      0,
      600_000,
    ),
    drainWindowMs: integer("DRAIN_WINDOW_MS", env.DRAIN_WINDOW_MS, d.drainWindowMs, 0, 600_000),
    sendToken: env.SEND_TOKEN ?? d.sendToken,
    inProcessWorkers: inProcessWorkers(
      pick("in-process-workers", "IN_PROCESS_WORKERS"),
      layerKind(pick("layer", "LAYER") ?? d.layer),
    ),
    metricsToken: env.METRICS_TOKEN ?? d.metricsToken,
    metricsAddress: listenAddress("METRICS_ADDRESS", pick("metrics-address", "METRICS_ADDRESS")),
    historyWindow: {
      messages: integer(
        "HISTORY_WINDOW_MESSAGES",
        env.HISTORY_WINDOW_MESSAGES,
        d.historyWindow.messages,
        50,
        100_000,
      ),
      seconds: integer(
        "HISTORY_WINDOW_SECONDS",
        env.HISTORY_WINDOW_SECONDS,
        d.historyWindow.seconds,
        0,
        7 * 24 * 3600,
      ),
    },
    historyMemoryMb: integer(
      "HISTORY_MEMORY_MB",
      env.HISTORY_MEMORY_MB,
      d.historyMemoryMb,
      1,
      65536,
    ),
    tokenSecret: tokenSecret(env.TOKEN_SECRET ?? d.tokenSecret),
    tokenMaxAgeSeconds: integer("TOKEN_MAX_AGE", env.TOKEN_MAX_AGE, d.tokenMaxAgeSeconds, 60),
    maxConnectionsPerAddress: integer(
      "MAX_CONNECTIONS_PER_ADDRESS",
      env.MAX_CONNECTIONS_PER_ADDRESS,
      d.maxConnectionsPerAddress,
    ),
    maxConnectionsPerUser: integer(
      "MAX_CONNECTIONS_PER_USER",
      env.MAX_CONNECTIONS_PER_USER,
      d.maxConnectionsPerUser,
    ),
    workers: workers(pick("workers", "WORKERS"), options.cores ?? navigator.hardwareConcurrency),
    logLevel: logLevel(pick("log-level", "LOG_LEVEL") ?? d.logLevel),
  };
  // A misspelt flag (`--prot 9000`) would otherwise leave its setting at the default, unseen.
  const unknown = [...flags.keys()].filter((flag) => !known.has(flag));
  if (unknown.length > 0) {
    const options = [...known].map((flag) => `--${flag}`).join(", ");
    throw new Error(`Unknown option --${unknown[0]}; the options are ${options}`);
  }
  return config;
}

function parseFlags(args: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) throw new Error(`Unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    if (eq > 0) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
      flags.set(arg.slice(2), args[++i]);
    } else {
      flags.set(arg.slice(2), "true");
    }
  }
  return flags;
}

function integer(
  name: string,
  raw: string | undefined,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function passwordHashing(
  env: Env,
): Pick<Config, "passwordIterations" | "allowWeakPasswordHashing"> {
  const allowWeak = boolean("ALLOW_WEAK_PASSWORD_HASHING", env.ALLOW_WEAK_PASSWORD_HASHING, false);
  const min = allowWeak ? 1 : MIN_PASSWORD_ITERATIONS;
  return {
    passwordIterations: integer(
      "PASSWORD_ITERATIONS",
      env.PASSWORD_ITERATIONS,
      DEFAULT_CONFIG.passwordIterations,
      min,
    ),
    allowWeakPasswordHashing: allowWeak,
  };
}

function boolean(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

function list(raw: string | undefined): string[] {
  return (raw ?? "").split(",").map((item) => item.trim().toLowerCase()).filter(Boolean);
}

function layerKind(raw: string): LayerKind {
  if (raw === "memory" || raw === "broadcast" || raw === "redis" || raw === "channels_redis") {
    return raw;
  }
  throw new Error(
    `LAYER must be "memory", "broadcast", "redis" or "channels_redis", got "${raw}"`,
  );
}

/** The Redis form; one of REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER may be set. */
function redisForm(
  pick: (flag: string, name: string) => string | undefined,
  env: Env,
  layer: LayerKind,
): RedisForm {
  const url = pick("redis-url", "REDIS_URL") || undefined;
  const sentinels = pick("redis-sentinels", "REDIS_SENTINELS") || undefined;
  const master = pick("redis-sentinel-master", "REDIS_SENTINEL_MASTER") || undefined;
  const cluster = pick("redis-cluster", "REDIS_CLUSTER") || undefined;
  // Only from the environment: a flag would show the password in the process list.
  const password = env.REDIS_PASSWORD || undefined;
  const named = [url && "REDIS_URL", sentinels && "REDIS_SENTINELS", cluster && "REDIS_CLUSTER"]
    .filter(Boolean);
  if (named.length > 1) {
    throw new Error(
      `Set one of REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER, not ${named.join(" and ")}`,
    );
  }
  if (master && !sentinels) throw new Error("REDIS_SENTINEL_MASTER needs REDIS_SENTINELS");
  if ((sentinels || cluster) && layer === "channels_redis") {
    throw new Error("LAYER=channels_redis works with REDIS_URL only, not Sentinels or a Cluster");
  }
  if (sentinels) {
    if (!master) {
      throw new Error("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the master's name (mymaster)");
    }
    return {
      kind: "sentinel",
      masterName: master,
      sentinels: addresses("REDIS_SENTINELS", sentinels),
      password,
    };
  }
  if (cluster) return { kind: "cluster", nodes: addresses("REDIS_CLUSTER", cluster), password };
  if (password) {
    throw new Error("REDIS_PASSWORD is for Sentinels and Clusters; put a password in REDIS_URL");
  }
  return { kind: "url", url: url ?? DEFAULT_CONFIG.redisUrl };
}

/** `host:port,host:port` (IPv6 hosts in brackets). */
function addresses(name: string, raw: string): RedisNodeAddress[] {
  if (!raw.split(",").some((item) => item.trim())) {
    throw new Error(`${name} must name at least one host:port, got "${raw}"`);
  }
  return raw.split(",").map((item) => item.trim()).filter(Boolean).map((item) => {
    const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(item);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      throw new Error(`${name} must be host:port pairs separated by commas, got "${raw}"`);
    }
    return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
}

/** `host:port` (an IPv6 host in brackets), or `null` when unset. */
function listenAddress(
  name: string,
  raw: string | undefined,
): { hostname: string; port: number } | null {
  if (raw === undefined || raw === "") return null;
  const match = /^(\[[^\]]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(raw.trim());
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new Error(`${name} must be host:port, e.g. 127.0.0.1:9100, got "${raw}"`);
  }
  return { hostname: match[1].replace(/^\[(.*)\]$/, "$1"), port };
}

function inProcessWorkers(raw: string | undefined, layer: LayerKind): "all" | string[] {
  // A worker in the server is the only one the in-process layers can reach.
  if (raw === undefined || raw.trim() === "") {
    return layer === "memory" || layer === "broadcast" ? "all" : [];
  }
  if (raw.trim() === "all") return "all";
  if (raw.trim() === "none") return [];
  const names = raw.split(",").map((name) => name.trim()).filter(Boolean);
  const bad = names.find((name) => !/^[a-zA-Z0-9\-_.]{1,99}$/.test(name));
  if (bad !== undefined) {
    throw new Error(
      `IN_PROCESS_WORKERS must be all, none or channel names separated by commas, got "${raw}"`,
    );
  }
  return names;
}

function logLevel(raw: string): LogLevel {
  if (["debug", "info", "warn", "error", "silent"].includes(raw)) return raw as LogLevel;
  throw new Error(`LOG_LEVEL must be debug, info, warn, error or silent, got "${raw}"`);
}

function tokenSecret(raw: string): string {
  // The value itself stays out of the message: error output may end up in a shared log.
  if (raw !== "" && raw.length < 32) {
    throw new Error(`TOKEN_SECRET must be at least 32 characters, got ${raw.length}`);
  }
  return raw;
}

function workers(raw: string | undefined, cores: number): number {
  if (raw === "auto") return Math.max(1, cores);
  return integer("WORKERS", raw, 1, 1, 256);
}
