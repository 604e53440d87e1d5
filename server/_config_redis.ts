/**
 * Which Redis the Redis layers use, read from the settings: one server by URL, a master found
 * through Sentinels, or a Cluster, with the checks that keep the three apart.
 */
import type { RedisForm, RedisNodeAddress } from "../storage/redis_connection.ts";
import { type Config, DEFAULT_CONFIG, type Env, type LayerKind } from "./_config_schema.ts";
import { integer } from "./_config_values.ts";

/** The Redis form; one of REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER may be set. */
export function redisForm(
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
  return { kind: "url", url: url === undefined ? DEFAULT_CONFIG.redisUrl : checkedUrl(url) };
}

// Checked here, where the message can say what to do: the errors of `new URL` quote the whole
// URL, password and all, and a URL that parses wrongly sends the rest of its password to logs.
const ENCODE_PASSWORD = "percent-encode / # ? @ % in its password (%2F %23 %3F %40 %25)";

function checkedUrl(url: string): string {
  if (!/^rediss?:\/\//i.test(url)) {
    throw new Error("REDIS_URL must start with redis:// or rediss://");
  }
  // Advice on the password only where there is one: a user or password ends with an "@" (an
  // unencoded "/" in it may end the host part early, so any "@" counts).
  const encode = url.includes("@") ? `: ${ENCODE_PASSWORD}` : "";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`REDIS_URL is not a valid URL${encode || ": its host or port is invalid"}`);
  }
  if (parsed.hash !== "" || url.includes("#")) {
    throw new Error(`REDIS_URL holds a "#"${encode}`);
  }
  if (parsed.search !== "") {
    // The client reads no option from a query: `?password=` would be ignored (and logged).
    throw new Error(
      "REDIS_URL must not have a query (?...): a password goes before the host " +
        `(redis://:password@host:6379); ${ENCODE_PASSWORD}`,
    );
  }
  if (!/^\/?\d*$/.test(parsed.pathname)) {
    throw new Error(`REDIS_URL's path is a database number (/0), if any${encode}`);
  }
  try {
    // The client decodes them: a stray `%` ("URI malformed" at the first connect) is named here.
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    throw new Error(
      `REDIS_URL's user or password holds a "%" that is not an escape: ${ENCODE_PASSWORD}`,
    );
  }
  return url;
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

/**
 * The channels_redis settings Django's `CHANNEL_LAYERS` must agree with; an empty variable means
 * channels_redis' default. Not flags: they are set once, beside Django's settings.
 */
export function channelsRedisSettings(env: Env): Config["channelsRedis"] {
  const d = DEFAULT_CONFIG.channelsRedis;
  const prefix = env.CHANNELS_REDIS_PREFIX || d.prefix;
  if (!/^\S{1,100}$/.test(prefix)) {
    throw new Error(`CHANNELS_REDIS_PREFIX must be 1 to 100 characters without spaces`);
  }
  // channels_redis' flush() deletes `KEYS <prefix>*`: a wildcard in it would match keys that are
  // not Django's (this server's accounts among them).
  if (/[*?[\]\\]/.test(prefix)) {
    throw new Error(
      `CHANNELS_REDIS_PREFIX must hold none of * ? [ ] \\ (channels_redis' flush() reads it as ` +
        `a pattern, and would delete keys that are not Django's), got "${prefix}"`,
    );
  }
  const day = 86400;
  return {
    prefix,
    expiry: integer("CHANNELS_REDIS_EXPIRY", env.CHANNELS_REDIS_EXPIRY, d.expiry, 1, day),
    groupExpiry: integer(
      "CHANNELS_REDIS_GROUP_EXPIRY",
      env.CHANNELS_REDIS_GROUP_EXPIRY,
      d.groupExpiry,
      1,
      365 * day,
    ),
    capacity: integer("CHANNELS_REDIS_CAPACITY", env.CHANNELS_REDIS_CAPACITY, d.capacity, 1, 1e6),
  };
}
