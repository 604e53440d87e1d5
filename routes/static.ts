import { type AppRoute, clientRoutes, type Handler, page, staticFileHandler } from "../mod.ts";

/** The project's `static/` folder, found from this module so the working directory does not matter. */
export const STATIC_ROOT: URL = new URL("../static/", import.meta.url);

/** `GET /static/*`: the files of `static/`. */
export const staticFiles: Handler = staticFileHandler(STATIC_ROOT, { prefix: "/static/" });

/**
 * `GET /favicon.ico`: the site's icon. The site's own pages name it; pages that do not (the
 * tutorials' own HTML) make the browser ask here, and a 404 would be an error in their console.
 */
export const favicon: Handler = () =>
  new Response(null, {
    status: 301,
    headers: { location: "/static/favicon.svg", "cache-control": "public, max-age=86400" },
  });

/** The static files' route, and the framework's browser client at `/channels/` (pages import it). */
export function staticRoutes(): AppRoute[] {
  return [
    page("GET", "/static/*", staticFiles),
    page("GET", "/favicon.ico", favicon),
    ...clientRoutes(),
  ];
}
