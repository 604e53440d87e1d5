/**
 * A small router on `URLPattern`: exact paths in a `Map`, patterns in a list, HEAD served by
 * GET routes, 405 with the methods that would work, and Django's APPEND_SLASH.
 *
 * It knows nothing of what a handler is, so the same table holds pages and WebSocket routes;
 * where two routes answer the same method and path, the caller's `prefer` picks between them
 * (the app prefers a WebSocket route for an upgrade, and a page for anything else).
 *
 * @example
 * ```ts
 * const router = new Router([{ method: "GET", path: "/chat/:room/", handler: "room" }]);
 * router.match("GET", "/chat/lobby/"); // { kind: "found", handler: "room", params: { room: "lobby" } }
 * router.match("GET", "/chat/lobby");  // { kind: "redirect", location: "/chat/lobby/" }
 * ```
 */

/** One row of a route table. `path` is a `URLPattern` pathname such as `/chat/:room/`. */
export interface Route<H> {
  /** An HTTP method such as `GET`; a `GET` route also answers `HEAD`. */
  method: string;
  /** A `URLPattern` pathname; one without pattern syntax is matched exactly. */
  path: string;
  /** What a match hands back. */
  handler: H;
}

/** What the router decided for a request. Path parameters come percent-decoded. */
export type RouteMatch<H> =
  | { kind: "found"; handler: H; params: Record<string, string> }
  | { kind: "redirect"; location: string }
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "bad-request"; reason: string }
  | { kind: "uri-too-long" }
  | { kind: "not-found"; reason?: string };

interface CompiledRoute<H> {
  route: Route<H>;
  pattern: URLPattern | null;
}

/** The pattern routes one path matches, with their parameters; or why it cannot match. */
type PatternHits<H> = { compiled: CompiledRoute<H>; params: Record<string, string> }[] | {
  reason: string;
};

/** How many paths' pattern matches are remembered; all are forgotten when it is reached. */
const MAX_REMEMBERED_PATHS = 1024;
/** Longer paths are matched every time. */
const MAX_REMEMBERED_PATH_LENGTH = 256;
/**
 * The longest path matched at all (in characters, as the client sent it, percent-encoded): a
 * longer one is answered 414. Deno's `URLPattern` keeps the last 4096 inputs it was given, so
 * paths of 64 KB held half a gigabyte for good. A room name of 100 characters is under 3,700
 * however Unicode writes it (decomposed, a character is up to 4 code points of 9 characters).
 */
export const MAX_PATH_LENGTH = 4096;

/** Matches a method and path against a route table. */
export class Router<H> {
  #exact = new Map<string, CompiledRoute<H>[]>();
  #patterns: CompiledRoute<H>[] = [];
  // Deno's `URLPattern.exec` keeps every input object it is given in a cache of 4096, so a
  // fresh `{pathname}` per request held a few hundred bytes per handshake (per idle socket,
  // until 4096). Matched once per distinct path instead; the parameters are shared, frozen.
  #hits = new Map<string, PatternHits<H>>();

  /** Compiles the table once: exact paths into a map, patterns into a list. */
  constructor(routes: Route<H>[]) {
    for (const route of routes) {
      if (isExact(route.path)) {
        const list = this.#exact.get(route.path) ?? [];
        list.push({ route, pattern: null });
        this.#exact.set(route.path, list);
      } else {
        this.#patterns.push({ route, pattern: new URLPattern({ pathname: route.path }) });
      }
    }
  }

  /**
   * Finds the route for `method` and `pathname` (the raw, still-encoded path, in which only
   * encoded letters, digits, "-", "_" and "~" are read as themselves). Of the routes
   * that answer it, the first that `prefer` accepts wins, else the first (exact paths come
   * before patterns, each in table order).
   */
  match(
    method: string,
    pathname: string,
    search = "",
    prefer?: (handler: H) => boolean,
  ): RouteMatch<H> {
    if (pathname.length > MAX_PATH_LENGTH) return { kind: "uri-too-long" };
    if (pathname.includes("%")) pathname = decodeUnreserved(pathname);
    const found = this.#candidates(pathname);
    if (found === null) return this.#appendSlash(method, pathname, search);
    if ("reason" in found) return { kind: "bad-request", reason: found.reason };
    const wanted = method === "HEAD" ? ["HEAD", "GET"] : [method];
    for (const name of wanted) {
      const answering = found.routes.filter(({ route }) => route.method === name);
      const hit = (prefer && answering.find(({ route }) => prefer(route.handler))) ?? answering[0];
      if (hit) return { kind: "found", handler: hit.route.handler, params: found.params.get(hit)! };
    }
    const allow = new Set(found.routes.map(({ route }) => route.method));
    if (allow.has("GET")) allow.add("HEAD");
    return { kind: "method-not-allowed", allow: [...allow].sort() };
  }

  #candidates(pathname: string):
    | { routes: CompiledRoute<H>[]; params: Map<CompiledRoute<H>, Record<string, string>> }
    | { reason: string }
    | null {
    const params = new Map<CompiledRoute<H>, Record<string, string>>();
    const routes: CompiledRoute<H>[] = [];
    for (const exact of this.#exact.get(pathname) ?? []) {
      routes.push(exact);
      params.set(exact, {});
    }
    const hits = this.#patternHits(pathname);
    if ("reason" in hits) return hits;
    for (const { compiled, params: decoded } of hits) {
      routes.push(compiled);
      params.set(compiled, decoded);
    }
    return routes.length > 0 ? { routes, params } : null;
  }

  #patternHits(pathname: string): PatternHits<H> {
    let hits = this.#hits.get(pathname);
    if (hits !== undefined) return hits;
    hits = [];
    const input = { pathname }; // one input for every pattern: one entry in Deno's cache
    for (const compiled of this.#patterns) {
      const result = compiled.pattern!.exec(input);
      if (!result) continue;
      const decoded = decodeParams(result.pathname.groups);
      if (decoded === null) {
        hits = { reason: "Malformed percent-encoding in the path" };
        break;
      }
      hits.push({ compiled, params: Object.freeze(decoded) });
    }
    // Bounded in bytes too: a client inventing long paths cannot make it hold megabytes.
    if (pathname.length > MAX_REMEMBERED_PATH_LENGTH) return hits;
    if (this.#hits.size >= MAX_REMEMBERED_PATHS) this.#hits.clear();
    this.#hits.set(pathname, hits);
    return hits;
  }

  #appendSlash(method: string, pathname: string, search: string): RouteMatch<H> {
    // Only safe methods are redirected: a redirected POST would lose its body (Django agrees).
    // A path starting with "//" would redirect to another host: never.
    const safe = !pathname.startsWith("//");
    if (safe && !pathname.endsWith("/")) {
      const withSlash = `${pathname}/`;
      if (this.#candidates(withSlash) !== null) {
        if (method === "GET" || method === "HEAD") {
          return { kind: "redirect", location: withSlash + search };
        }
        // Said, as Django's debug page says it: the form's action lacks its slash.
        const reason = `no route here; ${withSlash} has one, but a ${method} is not ` +
          "redirected there (its body would be lost): send it to the path with its slash";
        return { kind: "not-found", reason };
      }
    }
    return { kind: "not-found" };
  }
}

// Letters, digits, "-", "_" and "~" percent-encoded. Not ".": a dot segment is the URL
// parser's to resolve, and it has.
const ENCODED_UNRESERVED = /%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[Dd]|5[Ff]|7[Ee])/g;

// A "%" that starts no escape: decoding around it could make one (`%%34%31` would read `%41`,
// then the parameter's decoding `A`), so such a path is left as it is, to be refused.
const STRAY_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/**
 * `pathname` as the router matches it (RFC 3986 section 6.2.2.2): `%61` is `a`, so `/ch%61t/`
 * is `/chat/`, as Django serves it. Only unreserved characters: a `%2F` is not a `/`, and a
 * parameter is decoded once matched. No character decoded here is a "%", so nothing is decoded
 * twice.
 */
export function decodeUnreserved(pathname: string): string {
  if (STRAY_PERCENT.test(pathname)) return pathname;
  return pathname.replace(
    ENCODED_UNRESERVED,
    (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)),
  );
}

function isExact(path: string): boolean {
  return !/[:*(){}?+]/.test(path);
}

function decodeParams(groups: Record<string, string | undefined>): Record<string, string> | null {
  const params: Record<string, string> = {};
  try {
    for (const [name, value] of Object.entries(groups)) {
      params[name] = decodeURIComponent(value ?? "");
    }
  } catch {
    return null;
  }
  return params;
}
