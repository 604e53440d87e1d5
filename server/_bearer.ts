/**
 * Bearer tokens of the server's own endpoints (`/metrics`, the send endpoint): read from the
 * `Authorization` header, and compared with the configured secret in constant time.
 */
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";

/** The token of `Authorization: Bearer <token>`, or `null` when the request has none. */
export function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

/** Compares two secrets in time that does not depend on where they differ. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Hashing first gives equal lengths, so not even the length leaks.
  const digest = (text: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return timingSafeEqual(await digest(given), await digest(expected));
}
