/**
 * What the proxy in front of the server says of a request (`X-Forwarded-For`, `-Proto`,
 * `-Host`), read only with `TRUST_PROXY`. One rule for all three: the last entry is the one our
 * proxy wrote. A proxy that sets the header leaves one entry; one that appends (nginx's
 * `$proxy_add_x_forwarded_for`) puts its own last, after what the client sent, which anyone
 * can write.
 */

/** The last entry of the `X-Forwarded-*` header `name`, or `undefined` when it has none. */
export function forwardedByProxy(headers: Headers, name: string): string | undefined {
  return headers.get(name)?.split(",").at(-1)?.trim() || undefined;
}

/**
 * The client address an `X-Forwarded-For` entry names, as the per-address caps and throttles
 * count it: without the port some proxies add (Azure's Application Gateway writes
 * `203.0.113.7:51234`, and `[2001:db8::7]:443` for IPv6), which would make each connection an
 * address of its own, and an IPv6 address in lower case. Anything else is taken as written (and
 * quoted where it is shown).
 */
export function forwardedAddress(entry: string): string {
  const v4 = IPV4_WITH_PORT.exec(entry);
  if (v4 !== null) return v4[1];
  const bracketed = BRACKETED_IPV6.exec(entry);
  if (bracketed !== null) return bracketed[1].toLowerCase();
  return BARE_IPV6.test(entry) ? entry.toLowerCase() : entry;
}

const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED_IPV6 = /^\[([\da-f:.]*:[\da-f:.]*)\](?::\d{1,5})?$/i;
const BARE_IPV6 = /^[\da-f:.]*:[\da-f:.]*$/i;
