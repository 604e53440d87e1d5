/**
 * How a channels_redis layer is configured: its options, and the settings they make with
 * channels_redis' own defaults filled in and checked.
 */

/** How a {@linkcode ChannelsRedisLayer} connects; the defaults are channels_redis' own. */
export interface ChannelsRedisLayerOptions {
  /** The Redis URL Django's `CHANNEL_LAYERS` names in `hosts` (one host, no sharding). */
  url: string;
  /** Prefix of every key, channels_redis' `prefix` (default `"asgi"`). */
  prefix?: string;
  /** Seconds a message may wait in an inbox (default 60). */
  expiry?: number;
  /** Seconds a group membership lasts (default 86400). */
  groupExpiry?: number;
  /** Messages an inbox may hold before sends to it are dropped (default 100). */
  capacity?: number;
  /**
   * How long connecting may take (default 5 s); the first connect fails a second after that at
   * most, the time its PING (proof that Redis answered) is given.
   */
  connectTimeoutMs?: number;
  /** A command not answered within this time rejects (default 3 s). */
  commandTimeoutMs?: number;
}

/** The options with every default filled in. */
export type Settings = Required<Omit<ChannelsRedisLayerOptions, "url">> & { url: string };

/** Fills in channels_redis' defaults; a limit below 1 or not whole throws a TypeError. */
export function withDefaults(options: ChannelsRedisLayerOptions): Settings {
  const settings: Settings = {
    url: options.url,
    prefix: options.prefix ?? "asgi",
    expiry: options.expiry ?? 60,
    groupExpiry: options.groupExpiry ?? 86400,
    capacity: options.capacity ?? 100,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    commandTimeoutMs: options.commandTimeoutMs ?? 3000,
  };
  for (const name of ["expiry", "groupExpiry", "capacity"] as const) {
    if (!Number.isInteger(settings[name]) || settings[name] < 1) {
      throw new TypeError(`${name} must be a whole number of at least 1, got ${settings[name]}`);
    }
  }
  return settings;
}
