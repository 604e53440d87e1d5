/**
 * A server that answers page requests for any host name (`HOST` not loopback, `TRUST_PROXY` off:
 * `Config.servedHosts` is empty) says so at start. Django refuses to serve without
 * `ALLOWED_HOSTS` once `DEBUG` is off; here `ALLOWED_HOSTS` limits only the Origins of forms and
 * sockets on such a server, so a page whose own name was made to resolve to it (DNS rebinding)
 * can read its public pages from a visitor's network.
 */
import type { Config } from "./_config_schema.ts";
import { log } from "../telemetry/log.ts";

/** Warns when `config` answers page requests for any host name. */
export function warnAnyHostAnswered(
  config: Pick<Config, "host" | "servedHosts" | "trustProxy">,
): void {
  if (config.servedHosts.length > 0 || config.trustProxy) return;
  log.warn(
    `HOST is ${config.host} and TRUST_PROXY is off: page requests for any host name are ` +
      "answered (ALLOWED_HOSTS limits only the Origins of forms and sockets), so a web page whose " +
      "own name was made to resolve to this server (DNS rebinding) can read its public pages from " +
      "a visitor's network. Serve it behind a proxy that routes by host name, with " +
      "TRUST_PROXY=true, or on loopback",
  );
}
