/**
 * Route tables as data: `page` and `socket` make the rows an app hands to `createApp`.
 * A row says what answers a path; the app builds the WebSocket handlers itself, so a table
 * holds no sockets, no upgrade function and no live-connection registry.
 *
 * @example
 * ```ts
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

/** A page or endpoint: `handle` answers `method` requests to `path` (a `URLPattern` path). */
export function page(method: string, path: string, handle: Handler): AppRoute {
  return { method, path, handler: { kind: "http", handle } };
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
  return { method: "GET", path, handler: { kind: "websocket", consumer, options } };
}
