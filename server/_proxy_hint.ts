/**
 * Behind a reverse proxy without `TRUST_PROXY`, every client has the proxy's address: the
 * per-address caps (`MAX_CONNECTIONS_PER_ADDRESS`, Django's questions), the throttles and the log
 * all count them as one client, and the 257th browser is refused. The first request that carries
 * `X-Forwarded-For` while the setting is off says so, once per app (per Worker in a pool): the header is what a proxy
 * adds, and nothing else tells the operator why everyone shares one address.
 */
import { log } from "../telemetry/log.ts";

/** A check for each request of an app whose `TRUST_PROXY` is off; it warns at most once. */
export function proxyHeaderHint(): (request: Request, peer: string) => void {
  let said = false;
  return (request, peer) => {
    if (said || !request.headers.has("x-forwarded-for")) return;
    said = true;
    log.warn(
      `A request from ${peer} carries X-Forwarded-For, but TRUST_PROXY is off: every client ` +
        "behind a proxy counts as the proxy's one address (MAX_CONNECTIONS_PER_ADDRESS, " +
        "throttles, logs). Set TRUST_PROXY=true if the server is reached only through that proxy",
    );
  };
}
