/**
 * Serves the files of one folder: content types, ETag with `If-None-Match` -> 304, and no way
 * out of the folder (no `..`, no encoded slashes or backslashes, no NUL, no symlink that leads
 * elsewhere).
 *
 * @example
 * ```ts
 * const serve = staticFileHandler("/srv/app/static", { prefix: "/static/" });
 * // GET /static/site.css -> 200 text/css with an ETag; again with If-None-Match -> 304
 * ```
 */
import { contentType } from "@std/media-types";
import { eTag } from "@std/http/etag";
import { evaluatePreconditions, notModified, preconditionFailed } from "./_preconditions.ts";
import { extname, join, SEPARATOR } from "../storage/platform_path.ts";
import type { Handler } from "./context.ts";

/** How the files are served. */
export interface StaticFileOptions {
  /** The URL path the folder is mounted at, with both slashes, e.g. `/static/`. */
  prefix: string;
  /** The `Cache-Control` of every file. */
  cacheControl?: string;
}

/**
 * Names in URLs are not hashed, so a browser may keep a file but must ask whether it changed:
 * the answer is a cheap 304 while it did not, and a new file is seen at once after a deploy.
 */
export const DEFAULT_CACHE_CONTROL = "no-cache";

// deno-lint-ignore no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f\\/%:]/;

/**
 * A handler serving the files under `root` (a path, or a `file:` URL such as
 * `new URL("./static/", import.meta.url)`) at `options.prefix`; throws a `TypeError` at once
 * for a prefix without both slashes, which would answer 404 to every file.
 */
export function staticFileHandler(root: string | URL, options: StaticFileOptions): Handler {
  if (!options.prefix.startsWith("/") || !options.prefix.endsWith("/")) {
    throw new TypeError(
      `A static prefix must start and end with "/", e.g. "/static/": ${options.prefix}`,
    );
  }
  let realRoot: Promise<string> | null = null;
  return async (request, context) => {
    const segments = safeSegments(context.url.pathname, options.prefix);
    if (segments === null) return notFound();
    realRoot ??= Deno.realPath(root);
    const path = await resolveInside(await realRoot, segments);
    if (path === null) return notFound();
    return await serveFile(request, path, options.cacheControl ?? DEFAULT_CACHE_CONTROL);
  };
}

/**
 * The decoded path segments after `prefix`, or `null` when any of them could step outside
 * the folder, name a hidden file, or hide a separator, `%` or a control character.
 */
export function safeSegments(pathname: string, prefix: string): string[] | null {
  if (!pathname.startsWith(prefix)) return null;
  const segments: string[] = [];
  for (const raw of pathname.slice(prefix.length).split("/")) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    // A leading dot covers ".", ".." and dotfiles; "%" left after decoding is double encoding.
    if (segment === "" || segment.startsWith(".") || FORBIDDEN.test(segment)) return null;
    segments.push(segment);
  }
  return segments;
}

/** The real path of `segments` under `realRoot`, or `null` if it leads outside or is missing. */
async function resolveInside(realRoot: string, segments: string[]): Promise<string | null> {
  try {
    const real = await Deno.realPath(join(realRoot, ...segments));
    return real.startsWith(realRoot + SEPARATOR) ? real : null;
  } catch {
    return null;
  }
}

async function serveFile(request: Request, path: string, cacheControl: string): Promise<Response> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return notFound();
  }
  let keepOpen = false;
  try {
    const info = await file.stat();
    if (!info.isFile) return notFound();
    const headers = new Headers({
      "content-type": contentType(extname(path)) ?? "application/octet-stream",
      "cache-control": cacheControl,
    });
    const tag = await eTag(info);
    if (tag) headers.set("etag", tag);
    if (info.mtime) headers.set("last-modified", info.mtime.toUTCString());
    const outcome = evaluatePreconditions(request, tag, info.mtime);
    if (outcome === 304) return notModified(headers);
    if (outcome === 412) return preconditionFailed();
    headers.set("content-length", String(info.size));
    if (request.method === "HEAD") return new Response(null, { status: 200, headers });
    keepOpen = true; // the stream closes the file when it ends or is cancelled
    return new Response(file.readable, { status: 200, headers });
  } finally {
    if (!keepOpen) file.close();
  }
}

function notFound(): Response {
  return new Response("Not Found", {
    status: 404,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
