/**
 * A socket's scope (`conn.scope`), as the handshake made it, and its headers: every handshake
 * header while `connect` runs, then those a consumer reads later
 * ({@linkcode KEPT_HANDSHAKE_HEADERS}). Deno makes a served request's own headers unreadable once
 * it upgraded it, so they are kept as the handshake ends.
 *
 * Not all of them: reading every header makes Deno build its list of them, which it keeps with
 * the socket for as long as it is open (about 10 KB of memory per idle socket, measured). These
 * are read one by one, which it does not keep, and held as one flat string. `Authorization` is
 * not kept: it is a secret, and the user it names is `scope.user` already.
 */
import type { Scope } from "./consumer.ts";
import type { RequestContext } from "./context.ts";
import type { Identity } from "../auth/identify.ts";
import { readCookies } from "../auth/cookies.ts";
import { offeredSubprotocols } from "./handshake.ts";

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
function keptHeaderLines(request: Headers): string {
  const lines: string[] = [];
  for (const name of KEPT_HANDSHAKE_HEADERS) {
    const value = request.get(name); // one by one: see the module's comment
    if (value !== null) lines.push(`${name}:${value}`);
  }
  return lines.join("\n"); // a flat string, not a chain of concatenations
}

/** `name:value` lines as `Headers`. */
function headersOfLines(lines: string): Headers {
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
class ScopeHeaders extends Headers {
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

/**
 * A socket's scope. Cookies are parsed when first read, the query and the headers after the
 * handshake on every read: most consumers never read them or read them once in `connect`, and
 * holding the parsed URL, query or a `Headers` for every idle socket would cost memory per socket.
 */
export class HandshakeScope implements Scope {
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly client: string;
  readonly peer?: string;
  readonly user: Identity["user"];
  readonly sessionId: string | null;
  #search: string;
  // The request's own headers until the upgrade, then the kept ones (`keepHeaders`) as one
  // flat string of `name:value` lines: about half what a `Headers` keeps per socket.
  #headers: Headers | string;
  #cookies: Readonly<Record<string, string>> | null = null;

  constructor(request: Request, context: RequestContext, identity: Identity) {
    this.path = context.url.pathname;
    this.params = context.params;
    this.#headers = request.headers;
    this.client = context.client;
    this.peer = context.peer;
    this.user = identity.user;
    this.sessionId = identity.sessionId;
    this.#search = context.url.search;
  }

  // In `connect`, a view, not the request's own (see `ScopeHeaders`); after it, a copy of
  // the kept ones, which the consumer may change as it likes.
  get headers(): Headers {
    const headers = this.#headers;
    if (typeof headers === "string") return headersOfLines(headers);
    const kept = headersOfLines(keptHeaderLines(headers));
    return new ScopeHeaders(() => this.#currentHeaders(), kept);
  }

  #currentHeaders(): Headers {
    const headers = this.#headers;
    return typeof headers === "string" ? headersOfLines(headers) : headers;
  }

  /** Called just before the upgrade: see {@linkcode KEPT_HANDSHAKE_HEADERS}. */
  keepHeaders(): void {
    const request = this.#headers;
    if (typeof request !== "string") this.#headers = keptHeaderLines(request);
  }

  get subprotocols(): readonly string[] {
    // Read when asked, as the query is: nothing kept per socket.
    return offeredSubprotocols(this.#currentHeaders());
  }

  get query(): URLSearchParams {
    // Not kept: a consumer that reads it once (most do, in `connect`) pins nothing.
    return new URLSearchParams(this.#search);
  }

  get cookies(): Readonly<Record<string, string>> {
    return this.#cookies ??= readCookies(this.#currentHeaders());
  }
}
