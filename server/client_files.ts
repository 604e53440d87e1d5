/**
 * The package's browser client (`client/`) served to pages: `clientRoutes()` adds one exact
 * route per file, so a page imports `/channels/channels_client.js` from the app itself, at the
 * version of the framework the app runs, with nothing to copy or build.
 *
 * The files are read by URL beside this module, from disk in a checkout or from the registry
 * when the package is imported remotely, once per route table; they never change while the
 * package's version does not.
 *
 * @example
 * ```ts
 * import { type AppRoute, clientRoutes, html, htmlResponse, page } from "@channels/deno";
 *
 * const routes: AppRoute[] = [
 *   ...clientRoutes(), // GET /channels/channels_client.js, /channels/live_socket.js, ...
 *   page("GET", "/", () => htmlResponse(html`<script type="module" src="/app.js"></script>`)),
 * ];
 * ```
 */
import { contentType } from "@std/media-types";
import { eTag } from "@std/http/etag";
import { evaluatePreconditions, notModified, preconditionFailed } from "./_preconditions.ts";
import type { Handler } from "./context.ts";
import { type AppRoute, page } from "./routes.ts";
import { DEFAULT_CACHE_CONTROL } from "./static_files.ts";
import { log } from "../telemetry/log.ts";

/** The client's files, as they are named under the path they are served at. */
export const CLIENT_FILES: readonly string[] = Object.freeze([
  "mod.js",
  "channels_client.js",
  "pending_sends.js",
  "send_error.js",
  "live_socket.js",
  "heartbeat.js",
  "address_check.js",
  "backoff.js",
  "json_frames.js",
  "timer_limit.js",
]);

/** Where the client is served unless {@linkcode ClientRouteOptions.path} says otherwise. */
export const DEFAULT_CLIENT_PATH = "/channels/";

/** Where the client is served. */
export interface ClientRouteOptions {
  /** The URL path of the client's folder, with both slashes (default `/channels/`). */
  path?: string;
}

const CLIENT_FOLDER = new URL("../client/", import.meta.url);
// As `staticFileHandler` says it, so the client and the app's own scripts look alike.
const JAVASCRIPT = contentType(".js")!;

/** The routes that serve the client's files under `options.path` (default `/channels/`). */
export function clientRoutes(options: ClientRouteOptions = {}): AppRoute[] {
  const path = options.path ?? DEFAULT_CLIENT_PATH;
  if (!/^\/([\w.~-]+\/)*$/.test(path)) {
    throw new Error(`The client's path must start and end with "/", e.g. "/channels/": ${path}`);
  }
  // The client's modules import one another relatively, so they must share one folder.
  return CLIENT_FILES.map((name) => page("GET", path + name, clientFile(name)));
}

interface LoadedFile {
  body: Uint8Array<ArrayBuffer>;
  tag: string;
}

function clientFile(name: string): Handler {
  let loaded: Promise<LoadedFile> | null = null;
  return async (request) => {
    loaded ??= load(name);
    let file: LoadedFile;
    try {
      file = await loaded;
    } catch (error) {
      loaded = null; // a registry that did not answer may answer the next request
      log.error(`Could not read the client's ${name}`, error);
      return new Response("The client's file could not be read\n", { status: 503 });
    }
    const headers = new Headers({
      "content-type": JAVASCRIPT,
      "cache-control": DEFAULT_CACHE_CONTROL,
      "etag": file.tag,
    });
    // No Last-Modified: the file is the package's, whose time says nothing of its content.
    const outcome = evaluatePreconditions(request, file.tag, null);
    if (outcome === 304) return notModified(headers);
    if (outcome === 412) return preconditionFailed();
    headers.set("content-length", String(file.body.byteLength));
    const body = request.method === "HEAD" ? null : file.body;
    return new Response(body, { status: 200, headers });
  };
}

async function load(name: string): Promise<LoadedFile> {
  const response = await fetch(new URL(name, CLIENT_FOLDER));
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const body = new Uint8Array(await response.arrayBuffer());
  return { body, tag: (await eTag(body))! };
}
