/**
 * The Origin check on WebSocket upgrades (Channels' AllowedHostsOriginValidator): a page from
 * another site must not open a socket that carries the user's cookies.
 *
 * A request without `Origin` is let through: browsers always send it on WebSocket upgrades,
 * so its absence means a non-browser client (a terminal client, a script), which has no
 * ambient cookies to abuse.
 */
import { forwardedByProxy } from "./forwarded.ts";
import { isSecureRequest } from "./cookies.ts";

/** Which hosts may be named by a WebSocket's Origin. */
export interface OriginPolicy {
  /**
   * Allowed hosts, Django-style: `example.com`, `example.com:8443`, `.example.com` (the domain
   * and its subdomains) or `*`. Empty: only the host the request was made to.
   */
  allowedHosts: readonly string[];
  /** Take the request's host from `X-Forwarded-Host` (behind a trusted proxy). */
  trustProxy: boolean;
}

/** True when the request's Origin may open a socket under `policy`. */
export function isOriginAllowed(request: Request, policy: OriginPolicy): boolean {
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  let originUrl: URL;
  try {
    originUrl = new URL(origin);
  } catch {
    return false; // includes the opaque origin "null"
  }
  // As Django's CSRF check: a page served over plain http (where a network attacker may write)
  // is no page of the https site, though its host is the same.
  if (originUrl.protocol === "http:" && isSecureRequest(request, policy.trustProxy)) return false;
  const originHost = originUrl.host.toLowerCase();
  if (policy.allowedHosts.length === 0) {
    return originHost === requestHost(request, policy.trustProxy);
  }
  return policy.allowedHosts.some((pattern) =>
    hostMatches(pattern, originHost, originUrl.hostname)
  );
}

/**
 * True when the host `request` was made to (behind a trusted proxy, the one `X-Forwarded-Host`
 * names) matches one of `hosts`, patterns as {@linkcode OriginPolicy.allowedHosts} takes them
 * (Django's `ALLOWED_HOSTS`); any host when `hosts` is empty.
 */
export function isHostServed(
  request: Request,
  hosts: readonly string[],
  trustProxy: boolean,
): boolean {
  if (hosts.length === 0) return true;
  const url = URL.parse(`http://${requestHost(request, trustProxy)}`);
  return url !== null && hosts.some((pattern) => hostMatches(pattern, url.host, url.hostname));
}

/**
 * Why `isOriginAllowed` refused `request`'s Origin under `policy`, for the log line: a plain
 * http page of an https site, or a host that is not allowed. Without `ALLOWED_HOSTS` it names
 * the host it was compared with and the header that gave it: behind a proxy that passes on no
 * host, or drops its port (nginx's `$host`), that host is the proxy's mistake, not the page's.
 */
export function originRefusal(request: Request, policy: OriginPolicy): string {
  const origin = request.headers.get("origin") ?? "";
  if (origin.startsWith("http:") && isSecureRequest(request, policy.trustProxy)) {
    return "is a plain http page of an https site";
  }
  if (policy.allowedHosts.length > 0) return "is not an allowed host (ALLOWED_HOSTS)";
  const forwarded = policy.trustProxy && forwardedByProxy(request.headers, "x-forwarded-host");
  const host = JSON.stringify(requestHost(request, policy.trustProxy).slice(0, 100));
  return `is not the host the request was made to, ${host} (from its ${
    forwarded ? "X-Forwarded-Host" : "Host header"
  }; ALLOWED_HOSTS is empty)`;
}

/** The host `request` was made to, as its log line names it. */
export function requestHost(request: Request, trustProxy: boolean): string {
  const forwarded = trustProxy ? forwardedByProxy(request.headers, "x-forwarded-host") : null;
  return (forwarded || request.headers.get("host") || new URL(request.url).host).toLowerCase();
}

function hostMatches(rawPattern: string, rawHost: string, rawName: string): boolean {
  if (rawPattern === "*") return true;
  // A fully qualified name's final dot (`localhost.`) names the same host, on either side.
  const [pattern, hostWithPort, hostname] = [rawPattern, rawHost, rawName].map(withoutFinalDot);
  if (pattern.startsWith(".")) {
    return hostname === pattern.slice(1) || hostname.endsWith(pattern);
  }
  // "[::1]" names no port: an IPv6 address's own colons are inside its brackets.
  const hasPort = pattern.startsWith("[") ? pattern.includes("]:") : pattern.includes(":");
  return hasPort ? pattern === hostWithPort : pattern === hostname;
}

// `example.com.` and `example.com.:8443` as `example.com` and `example.com:8443`.
function withoutFinalDot(host: string): string {
  return host.replace(/\.(?=(:\d+)?$)/, "");
}
