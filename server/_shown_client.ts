/**
 * The client as an access line names it. Behind a trusted proxy the client's address is the one
 * the proxy forwarded, without a port (the per-address caps count it so), and every socket of one
 * address would write the same `[203.0.113.7]`: the line adds the proxy's connection,
 * `[203.0.113.7 via 127.0.0.1:55906]`, which is one per socket, so an operator can pair a
 * socket's HANDSHAKING, CONNECT and DISCONNECT lines. A client served straight shows as itself.
 */

/** `client`, with `peer` (the connection's own address) when the two differ. */
export function shownClient(client: string, peer: string | undefined): string {
  // "-": a request served from no connection (a test's, the communicator's).
  return peer === undefined || peer === "-" || peer === client ? client : `${client} via ${peer}`;
}
