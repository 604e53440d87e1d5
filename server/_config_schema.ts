/**
 * What the server can be told at start: the `Config` shape, its embedded defaults and the
 * environment it is read from. Reading and checking values is `config.ts`'s job; this module
 * only says what there is, so the value parsers can share the types without an import cycle.
 */
import type { LogLevel } from "../telemetry/log.ts";
import type { RedisForm } from "../storage/redis_connection.ts";

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
   * 10 ms, `DEFAULT_REDIS_LINGER_MS`; 0: never). One server by URL only. Trades latency
   * under load for CPU of this server and of Redis (see the README).
   */
  redisLingerMs: number;
  /**
   * Whether chat messages' scripts check the Redis master they write to (`REDIS_MASTER_CHECK`,
   * default on), so that a failover or a restart from an older snapshot gives the streams a new
   * epoch. On, the start fails when the Redis user may not run `INFO`; off, it warns.
   */
  redisMasterCheck: boolean;
  /**
   * With `LAYER=channels_redis`, the settings that must match Django's `CHANNEL_LAYERS` config:
   * `prefix`, `expiry`, `group_expiry`, `capacity` (`CHANNELS_REDIS_PREFIX`,
   * `CHANNELS_REDIS_EXPIRY`, `CHANNELS_REDIS_GROUP_EXPIRY`, `CHANNELS_REDIS_CAPACITY`; default
   * channels_redis' own).
   */
  channelsRedis: { prefix: string; expiry: number; groupExpiry: number; capacity: number };
  /**
   * Hosts a WebSocket's Origin, or a form's, may name (`ALLOWED_HOSTS`); empty means "the host
   * the request came to".
   */
  allowedHosts: string[];
  /**
   * Hosts the site answers to, patterns as `allowedHosts` takes them: a request made to any
   * other (its Host, or `X-Forwarded-Host` behind a trusted proxy) is refused 400, as Django's
   * `ALLOWED_HOSTS` refuses it. Empty: any host. `loadConfig` sets it, for a server that listens
   * on loopback without `TRUST_PROXY`, to the loopback names, its `HOST` and `ALLOWED_HOSTS`
   * (against DNS rebinding); for any other, to none.
   */
  servedHosts: string[];
  /** Trust `X-Forwarded-Proto` and `X-Forwarded-For` from a reverse proxy. */
  trustProxy: boolean;
  /** Largest WebSocket frame a client may send, in bytes (`MAX_MESSAGE_BYTES`). */
  maxMessageBytes: number;
  /** Messages per second a socket may send on average, and how many at once (the bucket). */
  rateLimit: { perSecond: number; burst: number };
  /** Events a connection may have waiting for its handlers before it drops more. */
  channelCapacity: number;
  /** Bytes a connection may have unsent before events to it are dropped. */
  maxBufferedBytes: number;
  /** Seconds a socket behind on its events may take in nothing before it is closed (1013). */
  stalledReaderSeconds: number;
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
  /** Secret for the send endpoint (`sendRoutes`, `POST /_send/`); the endpoint is off when empty. */
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
   * How long a chat room's stored history outlives its last message, in days
   * (`HISTORY_IDLE_DAYS`): room names are free, so a room left that long leaves nothing in the
   * store (Deno KV or Redis), and its next message starts a new epoch.
   */
  historyIdleDays: number;
  /**
   * Signs access tokens (`TOKEN_SECRET`, at least 32 characters). Empty: one is generated at
   * first use and kept in the store, so every process on that store agrees. Never logged.
   */
  tokenSecret: string;
  /** How long a new access token lives, in seconds (`TOKEN_MAX_AGE`). */
  tokenMaxAgeSeconds: number;
  /**
   * Django's who-am-I view, asked who a WebSocket upgrade's Django session cookie names
   * (`DJANGO_SESSION_URL`, `DJANGO_SESSION_COOKIE`, `DJANGO_SESSION_TIMEOUT_MS`,
   * `DJANGO_SESSION_SECRET`; see `auth/django_session.ts`); `null`: Django's sessions are not
   * read.
   */
  djangoSession: DjangoSessionSettings | null;
  /** Open WebSockets one client address may hold in this process; 0 is no cap. */
  maxConnectionsPerAddress: number;
  /** Open WebSockets one signed-in user may hold in this process; 0 is no cap. */
  maxConnectionsPerUser: number;
  /** Workers that serve on one port (`--workers N`; `auto` is one per core). */
  workers: number;
  /** The least severe level that is logged (`LOG_LEVEL`). */
  logLevel: LogLevel;
}

/** How to reach Django's who-am-I view (see `Config.djangoSession`). */
export interface DjangoSessionSettings {
  /** The view's http(s) URL. */
  url: string;
  /** Django's `SESSION_COOKIE_NAME`. */
  cookie: string;
  /** How long the view may take to answer, in ms. */
  timeoutMs: number;
  /** Sent as `Authorization: Bearer …` to the view; empty: none. Never logged. */
  secret: string;
  /** The most questions to the view at once, per process; 32 by default (a setting for tests). */
  maxInFlight?: number;
  /** The most of those one client address asks at once; 4 by default (a setting for tests). */
  maxInFlightPerAddress?: number;
}

/**
 * The Redis linger by default, in ms: under load, Redis's and this server's CPU per chat
 * message fall by about a quarter, for about this much latency (see the README's "The Redis
 * linger"). Callers that await each answer are held once in about 33 writes, not for each:
 * the linger holds only while it pays.
 */
export const DEFAULT_REDIS_LINGER_MS = 10;

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
  redisMasterCheck: true,
  channelsRedis: { prefix: "asgi", expiry: 60, groupExpiry: 86400, capacity: 100 },
  allowedHosts: [],
  servedHosts: [],
  trustProxy: false,
  maxMessageBytes: 64 * 1024,
  rateLimit: { perSecond: 20, burst: 40 },
  channelCapacity: 100,
  maxBufferedBytes: 256 * 1024,
  stalledReaderSeconds: 30,
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
  historyIdleDays: 30,
  tokenSecret: "",
  tokenMaxAgeSeconds: 30 * 24 * 3600,
  djangoSession: null,
  maxConnectionsPerAddress: 256,
  maxConnectionsPerUser: 64,
  workers: 1,
  logLevel: "info",
};

/** Environment variables by name, as `Deno.env.toObject()` returns them. */
export type Env = Record<string, string | undefined>;

/** {@linkcode Config.historyIdleDays} in ms, as the streams take it (`idleExpiryMs`). */
export function historyIdleMs(config: Pick<Config, "historyIdleDays">): number {
  return config.historyIdleDays * 24 * 60 * 60 * 1000;
}
