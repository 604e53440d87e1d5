/**
 * Why a page refused a request, for its access log line: Daphne's line says what happened, and
 * a refusal should also say why (`HTTP POST /log_in/ 403 [0.001, 127.0.0.1:5000] (CSRF token
 * missing.)`). The reason rides on the response in a header of its own, which the app reads
 * and takes off before the response goes out, so it never reaches the client.
 */

/**
 * The header the reason travels in, between a handler and the app's log line, percent-encoded
 * (a header holds Latin-1 only; a reason may quote a room's name in any script).
 */
export const LOG_REASON_HEADER = "x-channels-log-reason";

/** How many characters of a reason its line shows (a quoted header is 200 at most). */
export const REASON_AT_MOST = 500;

/**
 * `response`, marked with `reason` for its access log line (never sent to the client).
 *
 * @example
 * ```ts
 * import { type Handler, logReason } from "@channels/deno";
 *
 * const signUp: Handler = () =>
 *   logReason(new Response("Slow down\n", { status: 429 }), "too many sign-ups");
 * ```
 */
export function logReason(response: Response, reason: string): Response {
  // Cut as a quoted header is, with its length said; the line puts it on one line.
  const shown = reason.length <= REASON_AT_MOST
    ? reason
    : `${reason.slice(0, REASON_AT_MOST)}… (${reason.length} characters)`;
  const value = encodeURIComponent(shown.toWellFormed());
  try {
    response.headers.set(LOG_REASON_HEADER, value);
  } catch {
    // Immutable headers (a fetched or redirect response): the line goes without a reason.
  }
  return response;
}

/** Takes the reason off `response` (see {@linkcode logReason}); `undefined` when it has none. */
export function takeLogReason(response: Response): string | undefined {
  const reason = response.headers.get(LOG_REASON_HEADER);
  if (reason === null) return undefined;
  try {
    response.headers.delete(LOG_REASON_HEADER);
  } catch {
    // immutable: it cannot have been set either
  }
  try {
    return decodeURIComponent(reason);
  } catch {
    return reason; // set by hand, not by logReason
  }
}
