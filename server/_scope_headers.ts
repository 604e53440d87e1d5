/**
 * A socket scope's headers (`scope.headers`): every handshake header while `connect` runs, then
 * those a consumer reads later ({@linkcode KEPT_HANDSHAKE_HEADERS}). Deno makes a served
 * request's own headers unreadable once it upgraded it, so they are kept as the handshake ends.
 *
 * Not all of them: reading every header makes Deno build its list of them, which it keeps with
 * the socket for as long as it is open (about 10 KB of memory per idle socket, measured). These
 * are read one by one, which it does not keep, and held as one flat string. `Authorization` is
 * not kept: it is a secret, and the user it names is `scope.user` already.
 */

/** The handshake headers a socket's scope keeps once the 101 has answered it. */
export const KEPT_HANDSHAKE_HEADERS: readonly string[] = [
  "accept-language",
  "cookie",
  "forwarded",
  "host",
  "origin",
  "referer",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "user-agent",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
];

/** The kept headers of `request` as `name:value` lines: no header holds a line break. */
export function keptHeaderLines(request: Headers): string {
  const lines: string[] = [];
  for (const name of KEPT_HANDSHAKE_HEADERS) {
    const value = request.get(name); // one by one: see the module's comment
    if (value !== null) lines.push(`${name}:${value}`);
  }
  return lines.join("\n"); // a flat string, not a chain of concatenations
}

/** `name:value` lines as `Headers`. */
export function headersOfLines(lines: string): Headers {
  const headers = new Headers();
  for (const line of lines.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon), line.slice(colon + 1));
  }
  return headers;
}

/**
 * The headers `connect` sees: read-only `Headers` that read from `source` at each call, so an
 * object a consumer keeps from `connect` reads the kept headers after it, rather than throwing
 * as the request's own would. Deno's `Response` copies a `Headers`' own list and calls none of
 * its methods: that list holds the kept headers (`kept`).
 */
export class ScopeHeaders extends Headers {
  readonly #source: () => Headers;

  /** Headers that read from `source()` at each call, whose own list is `kept`. */
  constructor(source: () => Headers, kept: Headers) {
    super(kept);
    this.#source = source;
  }

  override get(name: string): string | null {
    return this.#source().get(name);
  }

  override has(name: string): boolean {
    return this.#source().has(name);
  }

  override getSetCookie(): string[] {
    return this.#source().getSetCookie();
  }

  override forEach(
    callback: (value: string, key: string, parent: this) => void,
    thisArg?: unknown,
  ): void {
    this.#source().forEach((value, key) => callback.call(thisArg, value, key, this));
  }

  override entries(): ReturnType<Headers["entries"]> {
    return this.#source().entries();
  }

  override keys(): ReturnType<Headers["keys"]> {
    return this.#source().keys();
  }

  override values(): ReturnType<Headers["values"]> {
    return this.#source().values();
  }

  override [Symbol.iterator](): ReturnType<Headers["entries"]> {
    return this.#source()[Symbol.iterator]();
  }

  override append(): never {
    throw new TypeError("The handshake's headers cannot be changed");
  }

  override set(): never {
    throw new TypeError("The handshake's headers cannot be changed");
  }

  override delete(): never {
    throw new TypeError("The handshake's headers cannot be changed");
  }
}
