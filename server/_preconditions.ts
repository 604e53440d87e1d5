/**
 * The conditional headers of a GET or HEAD of a file, evaluated in RFC 9110 §13.2.2's order:
 * `If-Match`, else `If-Unmodified-Since` (412 when it fails); then `If-None-Match`, else
 * `If-Modified-Since` (304 when the client's copy is current). Django's `static.serve` and
 * WhiteNoise answer the same.
 */
import { ifNoneMatch } from "@std/http/etag";

/** What a file's request is answered with: the file (200), 304 Not Modified, or 412. */
export type PreconditionOutcome = 200 | 304 | 412;

/** The outcome of `request`'s preconditions for a file of `tag` last modified at `modified`. */
export function evaluatePreconditions(
  request: Request,
  tag: string | undefined,
  modified: Date | null,
): PreconditionOutcome {
  const headers = request.headers;
  const match = headers.get("if-match");
  if (match !== null) {
    if (!strongMatch(match, tag)) return 412;
  } else {
    const since = httpDate(headers.get("if-unmodified-since"));
    if (since !== null && modified !== null && seconds(modified) > since) return 412;
  }
  const noneMatch = headers.get("if-none-match");
  if (noneMatch !== null) return ifNoneMatch(noneMatch, tag) ? 200 : 304;
  const since = httpDate(headers.get("if-modified-since"));
  if (since !== null && modified !== null && seconds(modified) <= since) return 304;
  return 200;
}

/**
 * The headers a 304 carries: those that a 200 would and that describe the cache entry, no
 * `Content-Type` or `Content-Length` (§15.4.5).
 */
export function notModified(headers: Headers): Response {
  const kept = new Headers();
  for (const name of ["cache-control", "etag", "last-modified", "vary", "expires"]) {
    const value = headers.get(name);
    if (value !== null) kept.set(name, value);
  }
  return new Response(null, { status: 304, headers: kept });
}

/** A 412 for a failed `If-Match` or `If-Unmodified-Since`. */
export function preconditionFailed(): Response {
  return new Response("Precondition Failed\n", {
    status: 412,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

// `If-Match` compares strongly (§13.1.1): a weak tag matches nothing but `*`.
function strongMatch(value: string, tag: string | undefined): boolean {
  if (value.trim() === "*") return tag !== undefined;
  if (tag === undefined || tag.startsWith("W/")) return false;
  return value.split(",").some((candidate) => candidate.trim() === tag);
}

// An HTTP-date in seconds since the epoch; `null` when absent or not a date (then ignored).
function httpDate(value: string | null): number | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

// Last-Modified has whole seconds: a file changed within the second it names is not newer.
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
