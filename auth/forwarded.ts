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
