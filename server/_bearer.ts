/**
 * Bearer tokens of the server's own endpoints (`/metrics`, the send endpoint): read from the
 * `Authorization` header as users' tokens are (`bearerToken`), and compared with the
 * configured secret in constant time.
 */
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";
import { QuietWarning } from "../telemetry/quiet_warning.ts";

/** Compares two secrets in time that does not depend on where they differ. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Hashing first gives equal lengths, so not even the length leaks.
  const digest = (text: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return timingSafeEqual(await digest(given), await digest(expected));
}

// By app (its services): the warning of a wrong token, once a minute per endpoint path.
const refusedTokens = new WeakMap<object, QuietWarning>();

/**
 * Warns of a wrong token sent to `path` of the app whose services are `app` from `client`, at
 * most once a minute per endpoint, with how many more came since the last warning: a guesser
 * shows at the warning level, and cannot flood the log (each request has its access line, at
 * info, as well).
 */
export function warnRefusedToken(app: object, path: string, client: string): void {
  let warning = refusedTokens.get(app);
  if (warning === undefined) refusedTokens.set(app, warning = new QuietWarning());
  const line = `Refused ${path} from ${client}: wrong token`;
  warning.warn(path, line, (count) => `${line} (and ${count - 1} more since the last warning)`);
}
