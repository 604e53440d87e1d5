import type { LogLevel } from "./log.ts";
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
  /** How long a closed presence socket keeps its user online (reloads do not flicker), in ms. */
  presenceGraceMs: number;
  /** Secret for `POST /_send/`; the endpoint is off when empty. */
  sendToken: string;
  /** Workers that serve on one port (`--workers N`; `auto` is one per core). */
  workers: number;
  /** The least severe level that is logged (`LOG_LEVEL`). */
  logLevel: LogLevel;
}

/** The embedded defaults: `deno task start` needs nothing else. */
export const DEFAULT_CONFIG: Readonly<Config> = {
  host: "127.0.0.1",
  port: 8000,
  dataDir: "./data",
  layer: "memory",
  redisUrl: "redis://127.0.0.1:6379",
  redisPrefix: "channels",
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
  presenceGraceMs: 3000,
  sendToken: "",
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
  const pick = (flag: string, name: string): string | undefined => flags.get(flag) ?? env[name];
  const d = DEFAULT_CONFIG;
  return {
    host: pick("host", "HOST") ?? d.host,
    port: integer("PORT", pick("port", "PORT"), d.port, 0, 65535),
    dataDir: pick("data-dir", "DATA_DIR") ?? d.dataDir,
    layer: layerKind(pick("layer", "LAYER") ?? d.layer),
    redisUrl: pick("redis-url", "REDIS_URL") ?? d.redisUrl,
    redisPrefix: pick("redis-prefix", "REDIS_PREFIX") ?? d.redisPrefix,
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
    presenceGraceMs: integer(
      "PRESENCE_GRACE_MS",
      env.PRESENCE_GRACE_MS,
      d.presenceGraceMs,
      0,
      600_000,
    ),
    sendToken: env.SEND_TOKEN ?? d.sendToken,
    workers: workers(pick("workers", "WORKERS"), options.cores ?? navigator.hardwareConcurrency),
    logLevel: logLevel(pick("log-level", "LOG_LEVEL") ?? d.logLevel),
  };
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

function logLevel(raw: string): LogLevel {
  if (["debug", "info", "warn", "error", "silent"].includes(raw)) return raw as LogLevel;
  throw new Error(`LOG_LEVEL must be debug, info, warn, error or silent, got "${raw}"`);
}

function workers(raw: string | undefined, cores: number): number {
  if (raw === "auto") return Math.max(1, cores);
  return integer("WORKERS", raw, 1, 1, 256);
}
