/**
 * Which Redis a connection reaches: a plain URL, a Sentinel set or a Cluster, and how each form
 * is shown in messages (without its password) and told apart by the code that connects.
 */

/** One Redis server or Sentinel address. */
export interface RedisNodeAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}

/**
 * Which Redis to use: one server by URL, a master found through Sentinels, or a Cluster found
 * through seed nodes. A Cluster routes each command by its key's hash slot, so keys a command
 * or transaction touches together must share a hash tag (`{…}`).
 */
export type RedisForm =
  | { kind: "url"; url: string }
  | {
    kind: "sentinel";
    /** The master's name in the Sentinels' configuration, e.g. `mymaster`. */
    masterName: string;
    /** Some of the Sentinels; they name the others, the master and its replicas. */
    sentinels: RedisNodeAddress[];
    /** The password of the master and replicas, when they need one. */
    password?: string;
  }
  | {
    kind: "cluster";
    /** Some of the Cluster's nodes; they name the others. */
    nodes: RedisNodeAddress[];
    /** The nodes' password, when they need one. */
    password?: string;
  };

/**
 * Removes a password from a Redis URL before it is logged: all that lies between `//` and the
 * last `@`, but a user name, whether the URL parses or not (a password with an unencoded `#` or
 * `/` would otherwise show in part), and any query.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf("//");
  if (start === -1) return url;
  const scheme = url.slice(0, start + 2);
  const query = url.indexOf("?", start + 2);
  const at = url.lastIndexOf("@");
  // An "@" after a "?": a query holding one, or a password holding both unencoded. Which part
  // is which cannot be told, so neither is shown.
  if (query !== -1 && at > query) return `${scheme}***`;
  const rest = query === -1 ? url.slice(start + 2) : `${url.slice(start + 2, query)}?***`;
  if (at < start) return `${scheme}${rest}`;
  const userinfo = url.slice(start + 2, at);
  const colon = userinfo.indexOf(":");
  const user = colon === -1 ? "" : `${userinfo.slice(0, colon)}:`;
  return `${scheme}${user}***@${rest.slice(at - start - 1)}`;
}

/** How a form is shown in messages and logs, without its password. */
export function describeRedisForm(target: string | RedisForm): string {
  const form = toForm(target);
  const list = (nodes: RedisNodeAddress[]) => nodes.map((n) => `${n.host}:${n.port}`).join(",");
  if (form.kind === "url") return redactUrl(form.url);
  if (form.kind === "sentinel") return `sentinel ${form.masterName}@${list(form.sentinels)}`;
  return `cluster ${list(form.nodes)}`;
}

/** The target of options with a `url` and/or a `form`: `form` wins; a `TypeError` if neither. */
export function redisTarget(options: { url?: string; form?: RedisForm }): string | RedisForm {
  const target = options.form ?? options.url;
  if (target === undefined || target === "") {
    throw new TypeError("Redis options need a `url` or a `form`");
  }
  return target;
}

/**
 * Whether `target` is one Redis server reached by URL: the one form where a connection's own
 * commands (`CLIENT ID`, `CLIENT UNBLOCK`) name a single, known connection.
 */
export function isSingleRedisServer(target: string | RedisForm): boolean {
  return toForm(target).kind === "url";
}

/** Whether `target` is a Redis Cluster (sharded pub/sub, hash tags). */
export function isRedisCluster(target: string | RedisForm): boolean {
  return toForm(target).kind === "cluster";
}

/** A bare URL as the one-server form, so callers may pass either. */
export function toForm(target: string | RedisForm): RedisForm {
  return typeof target === "string" ? { kind: "url", url: target } : target;
}
