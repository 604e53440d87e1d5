/**
 * The client as an access line names it. Behind a trusted proxy the client's address is the one
 * the proxy forwarded, without a port (the per-address caps count it so), and every socket of one
 * address would write the same `[203.0.113.7]`: the line adds the proxy's connection,
 * `[203.0.113.7 via 127.0.0.1:55906]`, which is one per socket, so an operator can pair a
 * socket's HANDSHAKING, CONNECT and DISCONNECT lines. A client served straight shows as itself.
 */
import { quoteClipped } from "../telemetry/log.ts";

/**
 * `client`, with `peer` (the connection's own address) when the two differ. A forwarded value
 * that is not a plain address is quoted, and cut: the client may have written it (a proxy that
 * passes the header on), and must neither push the proxy's connection out of the line nor write
 * a ` via ` of its own.
 */
export function shownClient(client: string, peer: string | undefined): string {
  // "-": a request served from no connection (a test's).
  if (peer === undefined || peer === "-" || peer === client) return client;
  const forwarded = PLAIN_ADDRESS.test(client) ? client : quoteClipped(client);
  return `${forwarded} via ${peer}`;
}

// An IPv4 or IPv6 address (bracketed or not), with a port or not, or a host name.
const PLAIN_ADDRESS = /^[\w.:[\]-]{1,100}$/;
