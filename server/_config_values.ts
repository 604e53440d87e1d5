/**
 * The parsers for single configuration values: command-line flags, whole numbers in a range,
 * booleans, lists, listen addresses and the settings that take one of a few words. Each throws
 * an `Error` that names the setting when its value is invalid.
 */
import type { LogLevel } from "../telemetry/log.ts";
import type { LayerKind } from "./_config_schema.ts";

/**
 * `--name value` and `--name=value` by name; a bare `--name` (no value follows) is `true`, which
 * only a yes-or-no setting takes (see `loadConfig`): `--host` alone must not mean the host "true".
 */
export function parseFlags(args: string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) throw new Error(`Unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    if (eq > 0) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
      flags.set(arg.slice(2), args[++i]);
    } else {
      flags.set(arg.slice(2), true);
    }
  }
  return flags;
}

/** A whole number from `min` to `max`, or `fallback` when unset. */
export function integer(
  name: string,
  raw: string | undefined,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (raw === undefined || raw === "") return fallback;
  // Digits only: Number() would also take "0x1f91" and "1e4".
  const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** A yes or no (`1`, `true`, `yes`, `on` and their opposites), or `fallback` when unset. */
export function boolean(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

/** Items separated by commas, trimmed and lower-cased; none when unset. */
export function list(raw: string | undefined): string[] {
  return (raw ?? "").split(",").map((item) => item.trim().toLowerCase()).filter(Boolean);
}

// A host as an Origin names it: a name or an [IPv6] address, with a port or not; `.domain` for
// the domain and its subdomains; `*` for any.
const ALLOWED_HOST =
  /^(\*|\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?(:\d{1,5})?|\[[0-9a-f:.]+\](:\d{1,5})?)$/;

/**
 * `ALLOWED_HOSTS`: hosts, not URLs. One written as Django's `CSRF_TRUSTED_ORIGINS` is
 * (`https://example.com`) would match no Origin, and every form and socket would be refused.
 */
export function allowedHosts(raw: string | undefined): string[] {
  const hosts = list(raw);
  for (const host of hosts) {
    if (ALLOWED_HOST.test(host)) continue;
    const bare = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/.exec(host)?.[1];
    throw new Error(
      `ALLOWED_HOSTS must list hosts (example.com, example.com:8443, .example.com or *), got ` +
        `${JSON.stringify(host)}${bare === undefined ? "" : `: write it as ${bare}`}`,
    );
  }
  return hosts;
}

/**
 * The names a server only this machine reaches answers to (`Config.servedHosts`), besides its
 * own `HOST` and those of `ALLOWED_HOSTS`: Django's list when `DEBUG` is on.
 */
export const LOOPBACK_HOSTS: readonly string[] = [".localhost", "127.0.0.1", "[::1]"];

/**
 * The hosts the site answers to (`Config.servedHosts`). A server that listens on loopback and is
 * reached directly (no `TRUST_PROXY`) answers only to loopback names, its own `HOST` and the hosts
 * of `ALLOWED_HOSTS`: a web page whose own name was made to resolve to 127.0.0.1 (DNS rebinding)
 * would else read its pages and post to it as its own site. Any other answers to any host (a
 * load balancer's health check by address, say), as before: none (empty).
 */
export function servedHosts(allowed: string[], listenHost: string, trustProxy: boolean): string[] {
  if (trustProxy || !isLoopback(listenHost)) return [];
  const own = listenHost.includes(":") && !listenHost.startsWith("[")
    ? `[${listenHost}]` // an IPv6 address, as a Host header writes it
    : listenHost.toLowerCase();
  return [...new Set([...LOOPBACK_HOSTS, own, ...allowed])];
}

function isLoopback(host: string): boolean {
  const plain = plainHost(host);
  return plain === "localhost" || plain === "::1" || /^127\.\d+\.\d+\.\d+$/.test(plain);
}

/** A `HOST` as one spelling: lower case, an IPv6 address without its brackets (`[::1]`). */
export function plainHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
}

/** One of the group layers (`LAYER`). */
export function layerKind(raw: string): LayerKind {
  if (raw === "memory" || raw === "broadcast" || raw === "redis" || raw === "channels_redis") {
    return raw;
  }
  throw new Error(
    `LAYER must be "memory", "broadcast", "redis" or "channels_redis", got "${raw}"`,
  );
}

/** `host:port` (an IPv6 host in brackets), or `null` when unset. */
export function listenAddress(
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

/** The background workers this process runs (`IN_PROCESS_WORKERS`); the default suits the layer. */
export function inProcessWorkers(raw: string | undefined, layer: LayerKind): "all" | string[] {
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

/** One of the log levels (`LOG_LEVEL`). */
export function logLevel(raw: string): LogLevel {
  if (["debug", "info", "warn", "error", "silent"].includes(raw)) return raw as LogLevel;
  throw new Error(`LOG_LEVEL must be debug, info, warn, error or silent, got "${raw}"`);
}

/** A token secret (`TOKEN_SECRET`): empty, or at least 32 characters. */
export function tokenSecret(raw: string): string {
  // The value itself stays out of the message: error output may end up in a shared log.
  if (raw !== "" && raw.length < 32) {
    throw new Error(`TOKEN_SECRET must be at least 32 characters, got ${raw.length}`);
  }
  return raw;
}

/** How many workers serve on one port (`WORKERS`); `auto` is one per core. */
export function workers(raw: string | undefined, cores: number): number {
  if (raw?.trim().toLowerCase() === "auto") return Math.max(1, cores);
  if (raw !== undefined && raw !== "" && !/^\s*\d+\s*$/.test(raw)) {
    throw new Error(`WORKERS must be auto or a whole number from 1 to 256, got "${raw}"`);
  }
  return integer("WORKERS", raw, 1, 1, 256);
}

/**
 * A bearer token (`SEND_TOKEN`, `METRICS_TOKEN`): unset or empty is none. One with whitespace in
 * it (a space an env file left) or a character outside ASCII could never be matched through an
 * `Authorization` header (Deno's `fetch` refuses such a header, curl sends UTF-8 bytes that the
 * server reads one per character), so its endpoint would be on and refuse every request: it is
 * refused at start instead. So is one shorter than {@linkcode MIN_BEARER_TOKEN_LENGTH}.
 */
export function tokenSetting(name: string, raw: string | undefined, fallback: string): string {
  if (raw === undefined) return fallback;
  // The value itself stays out of the message: error output may end up in a shared log.
  if (/\s/.test(raw)) {
    throw new Error(`${name} must not contain spaces or other whitespace (a bearer token)`);
  }
  if (/[^\x21-\x7e]/.test(raw)) {
    throw new Error(
      `${name} must be printable ASCII only (a bearer token): it holds a character that no ` +
        "Authorization header can carry as written",
    );
  }
  if (raw !== "" && raw.length < MIN_BEARER_TOKEN_LENGTH) {
    throw new Error(
      `${name} must be at least ${MIN_BEARER_TOKEN_LENGTH} characters: a short one can be ` +
        "guessed, and wrong guesses are not slowed down (make one with: openssl rand -hex 24)",
    );
  }
  return raw;
}

/**
 * The shortest `SEND_TOKEN` or `METRICS_TOKEN` taken: the send token posts as the server to any
 * group (a `connection.close` too), and its endpoint answers a wrong one at once.
 */
export const MIN_BEARER_TOKEN_LENGTH = 16;
