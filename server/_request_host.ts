/**
 * The Host header, checked as RFC 9112 section 3.2 asks (400 for one that is not a valid host).
 * Deno makes a request's URL by joining "http://", the Host header and the request target as
 * text, so a Host holding "/", "?", "#", "\" or "@" would move the path the router sees
 * (`Host: a/static` with `GET /site.css` reads `/static/site.css`): a proxy's rule on the path
 * could be passed by, and the access log would show a path the client never sent.
 */

// `uri-host [":" port]`: an IP literal in brackets, or a reg-name (RFC 3986: unreserved,
// percent-encoded and sub-delims characters). Empty is allowed: Deno puts its own in the URL.
const VALID_HOST = /^(?:\[[0-9A-Za-z:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?$/;

/** Whether `request`'s Host header, if it has one, is a host and port and nothing more. */
export function hasValidHost(request: Request): boolean {
  const host = request.headers.get("host");
  return host === null || VALID_HOST.test(host);
}

/**
 * The request target as the client sent it (path and query), read without the Host header
 * Deno joined to it: for the log line of a request refused for its Host.
 */
export function targetAsSent(request: Request): string {
  const url = request.url;
  const start = url.indexOf("://") + 3;
  const host = request.headers.get("host");
  // An empty Host (allowed) is no prefix: Deno put its own address there, found as any other.
  if (host && url.startsWith(host, start)) return url.slice(start + host.length) || "/";
  const rest = url.slice(start);
  const end = rest.search(/[/?#]/);
  return end < 0 ? "/" : rest.slice(end);
}
