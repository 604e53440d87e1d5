/**
 * Route tables as data: `page` and `socket` make the rows an app hands to `createApp`.
 * A row says what answers a path; the app builds the WebSocket handlers itself, so a table
 * holds no sockets, no upgrade function and no live-connection registry.
 *
 * @example
 * ```ts
 * import { type AppRoute, type Consumer, page, socket } from "@channels/deno";
 *
 * declare const echoConsumer: Consumer;
 * declare const privateConsumer: Consumer;
 * const routes: AppRoute[] = [
 *   page("GET", "/", () => new Response("Hello")),
 *   socket("/ws/echo/", echoConsumer),
 *   socket("/ws/private/", privateConsumer, { loginRequired: true }),
 * ];
 * ```
 */
import type { Route } from "./router.ts";
import type { Handler } from "./context.ts";
import type { Consumer } from "./consumer.ts";

/** How a WebSocket route is guarded. */
export interface WebSocketRouteOptions {
  /** Refuse anonymous users with 403 before any socket opens. */
  loginRequired?: boolean;
}

/** What answers a route: an HTTP handler, or a consumer run on each upgraded socket. */
export type RouteTarget =
  | { readonly kind: "http"; readonly handle: Handler }
  | {
    readonly kind: "websocket";
    readonly consumer: Consumer;
    readonly options: WebSocketRouteOptions;
  };

/** One row of an app's route table. */
export type AppRoute = Route<RouteTarget>;

/** The methods a route may answer (a `GET` route also answers `HEAD`). */
export const ROUTE_METHODS: readonly string[] = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
];

/**
 * A page or endpoint: `handle` answers `method` requests to `path` (a `URLPattern` path).
 * Throws a `TypeError` for a method or path no request could ever match (see `checkRoute`).
 */
export function page(method: string, path: string, handle: Handler): AppRoute {
  return checkRoute({ method, path, handler: { kind: "http", handle } });
}

/**
 * A WebSocket route: every upgrade to `path` runs its own connection of `consumer`. A page may
 * share the path: upgrades come here, other requests go to the page.
 */
export function socket(
  path: string,
  consumer: Consumer,
  options: WebSocketRouteOptions = {},
): AppRoute {
  return checkRoute({ method: "GET", path, handler: { kind: "websocket", consumer, options } });
}

/**
 * `route`, when a request could match it; else a `TypeError` that says what to write instead:
 * a method that is not one of {@linkcode ROUTE_METHODS} in capitals, a path that does not start
 * with `/`, Django's `<int:id>` where `URLPattern` wants `:id`, or a parameter's name written
 * with a hyphen (`:poll-id`), or a dot in a socket's path (`:poll.id`), which `URLPattern` ends
 * there.
 */
export function checkRoute(route: AppRoute): AppRoute {
  const { method, path } = route;
  const where = `Route ${JSON.stringify(path)}`;
  if (!ROUTE_METHODS.includes(method)) {
    const upper = String(method).toUpperCase();
    throw new TypeError(
      ROUTE_METHODS.includes(upper)
        ? `${where}: write the method in capitals, "${upper}", not "${method}"`
        : `${where}: unknown method ${JSON.stringify(method)} (use one of ${
          ROUTE_METHODS.join(", ")
        })`,
    );
  }
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(`${where}: a path starts with "/"`);
  }
  // Django's `<int:id>`, or OpenAPI's and Starlette's `{id}` (a URLPattern group matching "id"
  // itself: no one means that). Not a quantifier in a parameter's regex: `:year(\\d{4})`.
  const outsideRegexes = path.replace(/\((?:\\.|[^\\)])*\)/g, "()");
  const other = /<(?:\w+:)?(\w+)>/.exec(path) ??
    /\{([A-Za-z_]\w*)\}(?![?*+])/.exec(outsideRegexes);
  if (other !== null) {
    throw new TypeError(
      `${where}: write a parameter as ":${other[1]}" (URLPattern), not "${other[0]}"`,
    );
  }
  // `:poll-id` is the parameter `:poll` and the text "-id" after it: `/ws/5/` would be no
  // route, `/ws/5-id/` one with poll "5". A hyphen before another parameter (`:year-:month`) is
  // what it looks like; one meant as text is written escaped (`:poll\\-id`). So is `:poll.id` in
  // a socket's path; a page's `:name.json` is a file's extension.
  const joiners = route.handler.kind === "websocket" ? "[-.]" : "-";
  const joined = new RegExp(`(?<!\\\\):([A-Za-z_$][\\w$]*)(${joiners})([A-Za-z_$][\\w$]*)`)
    .exec(outsideRegexes);
  if (joined !== null) {
    const [written, name, joiner, rest] = joined;
    throw new TypeError(
      `${where}: "${written}" is the parameter ":${name}" followed by the text ` +
        `"${joiner}${rest}" (a parameter's name has no "${joiner}"): write ":${name}_${rest}", ` +
        `or ":${name}\\${joiner}${rest}" if the text is meant`,
    );
  }
  return route;
}

// A URLPattern parameter's name (`:room`), with its modifier and pattern kept as they change
// what it matches.
const PARAMETER = /:[A-Za-z_$][\w$]*/g;

/**
 * Every route of `routes` checked (see {@linkcode checkRoute}), and no two that answer the same
 * method and path the same way: of two pages (or two sockets) the second could never answer.
 * A page and a socket may share a path: upgrades go to the socket.
 */
export function checkRouteTable(routes: readonly AppRoute[]): void {
  const seen = new Set<string>();
  for (const route of routes) {
    checkRoute(route);
    // Parameters by place, not name: "/b/:x/" and "/b/:y/" match the same paths.
    const key = `${route.handler.kind} ${route.method} ${route.path.replace(PARAMETER, ":")}`;
    if (seen.has(key)) {
      const what = route.handler.kind === "websocket" ? "WebSocket route" : "page";
      throw new TypeError(
        `Route ${JSON.stringify(route.path)}: a second ${what} for ${route.method} ` +
          "(the first would always answer)",
      );
    }
    seen.add(key);
  }
}
