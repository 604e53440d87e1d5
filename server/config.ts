/**
 * Reads the configuration from command-line flags, then environment variables, then the
 * defaults (`loadConfig`), and says where the Redis linger applies. What can be configured and
 * its defaults are in `_config_schema.ts`, re-exported here; the parsers for single values are
 * in `_config_values.ts` and the Redis form in `_config_redis.ts`.
 */
import { MAX_PASSWORD_ITERATIONS, MIN_PASSWORD_ITERATIONS } from "../auth/passwords.ts";
import { type Config, DEFAULT_CONFIG, type Env } from "./_config_schema.ts";
import { channelsRedisSettings, redisForm } from "./_config_redis.ts";
import { djangoSessionSettings } from "./_config_django.ts";
import { lookalikeSettings } from "./_config_typos.ts";
import { historySettings } from "./_config_history.ts";
import {
  allowedHosts,
  boolean,
  inProcessWorkers,
  integer,
  layerKind,
  listenAddress,
  logLevel,
  parseFlags,
  plainHost,
  servedHosts,
  tokenSecret,
  tokenSetting,
  workers,
} from "./_config_values.ts";

export {
  type Config,
  DEFAULT_CONFIG,
  DEFAULT_REDIS_LINGER_MS,
  type DjangoSessionSettings,
  type Env,
  historyIdleMs,
  type LayerKind,
} from "./_config_schema.ts";

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

/**
 * The environment variables that look like a setting but are none, each with the setting it
 * probably means (`PROT (did you mean PORT?)`): they are ignored, so a start says so.
 *
 * @example
 * ```ts
 * import { log, settingTypos } from "@channels/deno";
 *
 * for (const typo of settingTypos(Deno.args, Deno.env.toObject())) {
 *   log.warn(`Unknown setting ${typo}: it is ignored`);
 * }
 * ```
 */
export function settingTypos(args: string[], env: Env): string[] {
  return lookalikeSettings(env, (recording: Env) => loadConfig(args, recording));
}

/**
 * The warning for each flag in `args` that holds a password (`--redis-url
 * redis://:secret@host`): anyone who lists the processes sees a command line, and `deno task`
 * prints its whole command line first. The setting works; the environment is the place for it.
 *
 * @example
 * ```ts
 * import { log, secretsOnCommandLine } from "@channels/deno";
 *
 * for (const warning of secretsOnCommandLine(Deno.args)) log.warn(warning);
 * ```
 */
export function secretsOnCommandLine(args: string[]): string[] {
  const warnings: string[] = [];
  for (const [flag, value] of parseFlags(args)) {
    if (flag !== "redis-url" || typeof value !== "string") continue;
    if (!/^[^/]*\/\/[^/@]*:[^/@]*@/.test(value)) continue;
    warnings.push(
      `Option --${flag} holds a password, which the process list (and deno task's echo of its ` +
        "command) shows to anyone: set REDIS_URL in the environment instead",
    );
  }
  return warnings;
}

/**
 * Reads the configuration from command-line flags, then environment variables, then the
 * defaults. Throws an `Error` that names the setting when a value is invalid. It only reads:
 * the log level, which is the whole process's, is the app's to set (`log.setLevel`).
 *
 * @example
 * ```ts
 * import { loadConfig, log } from "@channels/deno";
 *
 * const config = loadConfig(["--port", "9000"], Deno.env.toObject());
 * log.setLevel(config.logLevel);
 * ```
 */
export function loadConfig(args: string[], env: Env, options: { cores?: number } = {}): Config {
  if (!Array.isArray(args) || typeof env !== "object" || env === null) {
    throw new TypeError(
      "loadConfig(args, env): pass the command line and the environment, " +
        "loadConfig(Deno.args, Deno.env.toObject())",
    );
  }
  return readConfig(args, env, options, new Set());
}

/**
 * Every command-line flag {@linkcode loadConfig} reads (`--port`), for a `--help`; each is also
 * an environment variable (`PORT`).
 */
export function configFlags(): string[] {
  const known = new Set<string>();
  readConfig([], {}, {}, known);
  return [...known].map((flag) => `--${flag}`);
}

// `loadConfig`, adding to `known` every flag it reads.
function readConfig(
  args: string[],
  env: Env,
  options: { cores?: number },
  known: Set<string>,
): Config {
  const flags = parseFlags(args);
  const pick: SettingReader = (flag, name, bare) => {
    known.add(flag);
    const value = flags.get(flag);
    // An empty variable means the default; an empty flag (`--port=`) is a mistake, not a reset.
    if (value === undefined) return env[name] || undefined;
    if (value === true && bare !== undefined) return bare;
    if (value === true || value === "") {
      throw new Error(`Option --${flag} needs a value (${name})`);
    }
    return value;
  };
  const d = DEFAULT_CONFIG;
  const host = pick("host", "HOST") ?? d.host;
  const port = integer("PORT", pick("port", "PORT"), d.port, 0, 65535);
  const dataDir = pick("data-dir", "DATA_DIR") ?? d.dataDir;
  const layer = layerKind(pick("layer", "LAYER") ?? d.layer);
  const allowed = allowedHosts(pick("allowed-hosts", "ALLOWED_HOSTS"));
  const trustProxy = boolean(
    "TRUST_PROXY",
    pick("trust-proxy", "TRUST_PROXY", "true"),
    d.trustProxy,
  );
  const config: Config = {
    host,
    port,
    dataDir,
    layer,
    ...redisSettings(pick, env, layer),
    channelsRedis: channelsRedisSettings(env),
    allowedHosts: allowed,
    servedHosts: servedHosts(allowed, host, trustProxy),
    trustProxy,
    ...socketLimits(env),
    ...accountSettings(env),
    djangoSession: djangoSessionSettings(env),
    presenceGraceMs: integer(
      "PRESENCE_GRACE_MS",
      env.PRESENCE_GRACE_MS,
      d.presenceGraceMs,
      0,
      600_000,
    ),
    drainWindowMs: integer("DRAIN_WINDOW_MS", env.DRAIN_WINDOW_MS, d.drainWindowMs, 0, 600_000),
    sendToken: tokenSetting("SEND_TOKEN", env.SEND_TOKEN, d.sendToken),
    inProcessWorkers: inProcessWorkers(pick("in-process-workers", "IN_PROCESS_WORKERS"), layer),
    metricsToken: tokenSetting("METRICS_TOKEN", env.METRICS_TOKEN, d.metricsToken),
    metricsAddress: listenAddress("METRICS_ADDRESS", pick("metrics-address", "METRICS_ADDRESS")),
    ...historySettings(env),
    workers: workers(pick("workers", "WORKERS"), options.cores ?? navigator.hardwareConcurrency),
    logLevel: logLevel(pick("log-level", "LOG_LEVEL") ?? d.logLevel),
  };
  checkPrefixesApart(config);
  const metrics = config.metricsAddress;
  if (metrics !== null && metrics.port === port && port !== 0 && sameHost(metrics.hostname, host)) {
    // Else the metrics listener takes it first, and the server's own is "in use by another program".
    throw new Error(`METRICS_ADDRESS must not be the server's own HOST and PORT (${host}:${port})`);
  }
  // A misspelt flag (`--prot 9000`) would otherwise leave its setting at the default, unseen.
  const unknown = [...flags.keys()].filter((flag) => !known.has(flag));
  if (unknown.length > 0) {
    const options = [...known].map((flag) => `--${flag}`).join(", ");
    throw new Error(`Unknown option --${unknown[0]}; the options are ${options}`);
  }
  return config;
}

// With channels_redis, Django's keys and this server's (accounts, sessions, streams) share one
// Redis: channels_redis' `flush()` deletes every key that starts with its prefix. This server's
// keys are `<prefix>`, `<prefix>:…` and, on a Cluster, `{<prefix>:…}`: a Django prefix that
// starts one of them would lose this server's data to a flush, and one inside them could meet
// its keys.
function checkPrefixesApart(config: Config): void {
  const ours = config.redisPrefix;
  const django = config.channelsRedis.prefix;
  const overlap = ours.startsWith(django) || `{${ours}:`.startsWith(django) ||
    django.startsWith(`${ours}:`);
  if (config.layer !== "channels_redis" || !overlap) return;
  throw new Error(
    `CHANNELS_REDIS_PREFIX ("${django}") and REDIS_PREFIX ("${ours}") overlap: channels_redis' ` +
      "flush() deletes every key that starts with its prefix, this server's accounts, sessions " +
      `and streams among them (its keys start "${ours}:"). Give them prefixes apart (the ` +
      'defaults, "asgi" and "channels", are)',
  );
}

// Two hosts that one port cannot serve twice: the same however spelt (`[::1]`, `::1`), either
// one every interface, or `localhost` and the address it may resolve to (127.0.0.1 or ::1,
// whichever the system gives first: a clash with both is assumed).
function sameHost(a: string, b: string): boolean {
  const everywhere = (host: string) => host === "0.0.0.0" || host === "::";
  const localhost = (host: string) => host === "127.0.0.1" || host === "::1";
  const [x, y] = [plainHost(a), plainHost(b)];
  if (x === y || everywhere(x) || everywhere(y)) return true;
  return (x === "localhost" && localhost(y)) || (y === "localhost" && localhost(x));
}

// A setting's value: its command-line flag, else its environment variable. Every flag the
// configuration reads goes through it, so an unknown one can be told apart. A bare flag (no
// value) reads as `bare`, given only for a yes-or-no setting; any other bare flag is an error.
type SettingReader = (flag: string, name: string, bare?: string) => string | undefined;

function redisSettings(
  pick: SettingReader,
  env: Env,
  layer: Config["layer"],
): Pick<Config, "redisUrl" | "redisPrefix" | "redisForm" | "redisLingerMs" | "redisMasterCheck"> {
  const d = DEFAULT_CONFIG;
  return {
    redisUrl: pick("redis-url", "REDIS_URL") ?? d.redisUrl,
    redisPrefix: pick("redis-prefix", "REDIS_PREFIX") ?? d.redisPrefix,
    redisForm: redisForm(pick, env, layer),
    redisLingerMs: integer(
      "REDIS_LINGER_MS",
      pick("redis-linger-ms", "REDIS_LINGER_MS"),
      d.redisLingerMs,
      0,
      100,
    ),
    redisMasterCheck: boolean("REDIS_MASTER_CHECK", env.REDIS_MASTER_CHECK, d.redisMasterCheck),
  };
}

// What one socket, and one client address or user, may send and hold.
function socketLimits(env: Env): Pick<
  Config,
  | "maxMessageBytes"
  | "rateLimit"
  | "channelCapacity"
  | "maxBufferedBytes"
  | "stalledReaderSeconds"
  | "maxConnectionsPerAddress"
  | "maxConnectionsPerUser"
> {
  const d = DEFAULT_CONFIG;
  return {
    maxMessageBytes: integer("MAX_MESSAGE_BYTES", env.MAX_MESSAGE_BYTES, d.maxMessageBytes, 1),
    rateLimit: {
      perSecond: integer("RATE_LIMIT", env.RATE_LIMIT, d.rateLimit.perSecond, 1),
      burst: integer("RATE_BURST", env.RATE_BURST, d.rateLimit.burst, 1),
    },
    channelCapacity: integer("CHANNEL_CAPACITY", env.CHANNEL_CAPACITY, d.channelCapacity, 1),
    maxBufferedBytes: integer("MAX_BUFFERED_BYTES", env.MAX_BUFFERED_BYTES, d.maxBufferedBytes, 1),
    stalledReaderSeconds: integer(
      "STALLED_READER_SECONDS",
      env.STALLED_READER_SECONDS,
      d.stalledReaderSeconds,
      1,
    ),
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
  };
}

// Sessions, passwords, log-in and sign-up throttles, access tokens.
function accountSettings(env: Env): Pick<
  Config,
  | "sessionMaxAgeSeconds"
  | "passwordIterations"
  | "allowWeakPasswordHashing"
  | "loginThrottle"
  | "signUpThrottle"
  | "tokenSecret"
  | "tokenMaxAgeSeconds"
> {
  const d = DEFAULT_CONFIG;
  return {
    sessionMaxAgeSeconds: integer(
      "SESSION_MAX_AGE",
      env.SESSION_MAX_AGE,
      d.sessionMaxAgeSeconds,
      1,
      LONGEST_LIFETIME_SECONDS,
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
        LONGEST_LIFETIME_SECONDS,
      ),
    },
    signUpThrottle: {
      perAddress: integer(
        "SIGNUP_MAX_PER_ADDRESS",
        env.SIGNUP_MAX_PER_ADDRESS,
        d.signUpThrottle.perAddress,
        1,
      ),
      windowSeconds: integer(
        "SIGNUP_WINDOW",
        env.SIGNUP_WINDOW,
        d.signUpThrottle.windowSeconds,
        1,
        LONGEST_LIFETIME_SECONDS,
      ),
    },
    tokenSecret: tokenSecret(env.TOKEN_SECRET ?? d.tokenSecret),
    tokenMaxAgeSeconds: integer(
      "TOKEN_MAX_AGE",
      env.TOKEN_MAX_AGE,
      d.tokenMaxAgeSeconds,
      60,
      LONGEST_LIFETIME_SECONDS,
    ),
  };
}

/**
 * The longest lifetime or window a setting in seconds may ask for: ten years. Stored records
 * expire by it, and Deno KV refuses an expiry much longer (about 260,000 years) only when the
 * first one is written, a log-in's 500 long after the start.
 */
export const LONGEST_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

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
      MAX_PASSWORD_ITERATIONS,
    ),
    allowWeakPasswordHashing: allowWeak,
  };
}
