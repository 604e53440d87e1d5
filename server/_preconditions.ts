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

const MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec";
const IMF_FIXDATE = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) (${MONTHS}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`,
);
const RFC_850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-(${MONTHS})-(\\d{2}) ` +
    "(\\d{2}):(\\d{2}):(\\d{2}) GMT$",
);
const ASCTIME = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTHS}) ([ \\d]\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`,
);

/**
 * An HTTP-date (§5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms, all in UTC) in
 * seconds since the epoch; `null` when absent or anything else, which the caller then ignores
 * (§13.1.3): `Date.parse` would read an asctime date in the server's own time zone, and take
 * "2030" or "1" for dates.
 */
export function httpDate(value: string | null): number | null {
  if (value === null) return null;
  let parts: [year: number, month: string, day: string, h: string, m: string, s: string];
  let match;
  if ((match = IMF_FIXDATE.exec(value)) !== null) {
    parts = [Number(match[3]), match[2], match[1], match[4], match[5], match[6]];
  } else if ((match = RFC_850.exec(value)) !== null) {
    parts = [twoDigitYear(Number(match[3])), match[2], match[1], match[4], match[5], match[6]];
  } else if ((match = ASCTIME.exec(value)) !== null) {
    parts = [Number(match[6]), match[1], match[2], match[3], match[4], match[5]];
  } else return null;
  const [year, monthName, day, hours, minutes, seconds] = parts;
  const month = MONTHS.split("|").indexOf(monthName);
  const ms = Date.UTC(year, month, Number(day), Number(hours), Number(minutes), Number(seconds));
  const date = new Date(ms);
  // Date.UTC rolls "31 Feb" or "25:00" over to another date: those are no dates.
  if (
    date.getUTCDate() !== Number(day) || date.getUTCHours() !== Number(hours) ||
    date.getUTCMinutes() !== Number(minutes) || date.getUTCSeconds() !== Number(seconds)
  ) return null;
  return Math.floor(ms / 1000);
}

// RFC 850's two-digit year: the latest year ending in those digits that is not more than 50
// years ahead (§5.6.7).
function twoDigitYear(yy: number): number {
  const now = new Date().getUTCFullYear();
  let year = Math.floor(now / 100) * 100 + yy;
  if (year > now + 50) year -= 100;
  return year;
}

// Last-Modified has whole seconds: a file changed within the second it names is not newer.
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
