import { type AppRoute, clientRoutes, type Handler, page, staticFileHandler } from "../mod.ts";

/** The project's `static/` folder, found from this module so the working directory does not matter. */
export const STATIC_ROOT: URL = new URL("../static/", import.meta.url);

/** `GET /static/*`: the files of `static/`. */
export const staticFiles: Handler = staticFileHandler(STATIC_ROOT, { prefix: "/static/" });

/** The static files' route, and the framework's browser client at `/channels/` (pages import it). */
export function staticRoutes(): AppRoute[] {
  return [page("GET", "/static/*", staticFiles), ...clientRoutes()];
}
