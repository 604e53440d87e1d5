/**
 * Bearer tokens of the server's own endpoints (`/metrics`, the send endpoint): read from the
 * `Authorization` header as users' tokens are (`bearerToken`), and compared with the
 * configured secret in constant time.
 */
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";
import { log } from "../telemetry/log.ts";

/** Compares two secrets in time that does not depend on where they differ. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Hashing first gives equal lengths, so not even the length leaks.
  const digest = (text: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return timingSafeEqual(await digest(given), await digest(expected));
}

// How often a wrong token to one endpoint is warned about: the rest are counted meanwhile.
const REFUSED_TOKEN_WARNING_MS = 60_000;

// By app (its services), then by endpoint path (a handful): when its last warning was written,
// and the refusals since.
const refusedTokens = new WeakMap<object, Map<string, { since: number; more: number }>>();

/**
 * Warns of a wrong token sent to `path` of the app whose services are `app` from `client`, at
 * most once a minute per endpoint, with how many more came since the last warning: a guesser
 * shows at the warning level, and cannot flood the log (each request has its access line, at
 * info, as well).
 */
export function warnRefusedToken(app: object, path: string, client: string): void {
  const now = performance.now();
  let byPath = refusedTokens.get(app);
  if (byPath === undefined) refusedTokens.set(app, byPath = new Map());
  const last = byPath.get(path);
  if (last !== undefined && now - last.since < REFUSED_TOKEN_WARNING_MS) {
    last.more++;
    return;
  }
  const more = last !== undefined && last.more > 0
    ? ` (and ${last.more} more since the last warning)`
    : "";
  log.warn(`Refused ${path} from ${client}: wrong token${more}`);
  byPath.set(path, { since: now, more: 0 });
}
