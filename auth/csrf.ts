/**
 * CSRF protection as Django does it: a random secret in the `csrftoken` cookie, and in every
 * form a hidden `csrfmiddlewaretoken` that must carry the same secret. A page on another site
 * can make the browser send the cookie but cannot read it, so it cannot fill in the field.
 * The form token is masked afresh on each render (so the page never shows the same bytes
 * twice, against BREACH-style compression attacks) and compared in constant time. POSTs must
 * also come from our own origin (`Origin`, or `Referer` when a browser sent no `Origin`).
 *
 * An app's page takes its token from `pageAccount`, and its form handler reads the post with
 * `readProtectedForm`, which runs this check (the field's value is a masked token, never the
 * cookie's secret itself: `newCsrfSecret()` given as the field is refused):
 *
 * @example
 * ```ts
 * import { CSRF_FIELD, type Handler, html, htmlResponse, pageAccount } from "@channels/deno";
 *
 * export const votePage: Handler = async (request, context) => {
 *   const page = await pageAccount(request, context); // sets the CSRF cookie if need be
 *   return page.finish(htmlResponse(html`<form method="post">
 *     <input type="hidden" name="${CSRF_FIELD}" value="${page.csrfToken}">
 *     <button name="choice" value="pizza">Pizza</button></form>`));
 * };
 * ```
 */
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";
import { CSRF_COOKIE, isSecureRequest, readCookies } from "./cookies.ts";
import { isOriginAllowed, type OriginPolicy } from "./origin.ts";
import { quoteClipped } from "../telemetry/log.ts";

/** The form field that carries the token (Django's name). */
export const CSRF_FIELD = "csrfmiddlewaretoken";

const SECRET_BYTES = 32;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const MASKED_PATTERN = /^[A-Za-z0-9_-]{86}$/;

/** A new random secret for the CSRF cookie. */
export function newCsrfSecret(): string {
  return encode(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The request's CSRF secret from its cookie, or a new one (`fresh`) the answer must set. */
export function csrfSecret(request: Request): { secret: string; fresh: boolean } {
  const cookie = csrfCookieSecret(request);
  return cookie === null
    ? { secret: newCsrfSecret(), fresh: true }
    : { secret: cookie, fresh: false };
}

/** The request's CSRF secret from its cookie; `null` without a well-formed one. */
export function csrfCookieSecret(request: Request): string | null {
  const cookie = readCookies(request.headers)[CSRF_COOKIE];
  return cookie !== undefined && SECRET_PATTERN.test(cookie) ? cookie : null;
}

/** The token to put in a form: a random mask followed by the secret XOR that mask. */
export function maskToken(secret: string): string {
  const bytes = decode(secret);
  const mask = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  const token = new Uint8Array(SECRET_BYTES * 2);
  token.set(mask);
  for (let i = 0; i < SECRET_BYTES; i++) token[SECRET_BYTES + i] = bytes[i] ^ mask[i];
  return encode(token);
}

/**
 * Why a state-changing request must be refused, or `null` when it may proceed. The reasons
 * are Django's, so they are familiar and searchable, with two changes for the log line and the
 * page that show them: the Origin is quoted (a client wrote it), and a Referer is shown by its
 * origin alone (its path or query may hold a token).
 */
export function csrfFailure(
  request: Request,
  form: URLSearchParams,
  policy: OriginPolicy,
): string | null {
  const origin = request.headers.get("origin");
  const secure = isSecureRequest(request, policy.trustProxy);
  if (origin !== null) {
    // Over https, an http page of the same host is refused too (see `isOriginAllowed`).
    if (!isOriginAllowed(request, policy)) {
      return `Origin checking failed - ${quoteClipped(origin)} does not match any trusted origins.`;
    }
  } else {
    const referer = request.headers.get("referer");
    // Over https, Django asks for one: a browser sends it there (Referrer-Policy: same-origin).
    if (referer === null && secure) return "Referer checking failed - no Referer.";
    if (referer !== null && secure && !referer.startsWith("https:")) {
      return "Referer checking failed - Referer is insecure while host is secure.";
    }
    if (referer !== null) {
      const origin = refererOrigin(referer);
      if (origin === null) return "Referer checking failed - Referer is malformed.";
      if (!refererAllowed(request, origin, policy)) {
        return `Referer checking failed - ${
          quoteClipped(origin)
        } does not match any trusted origins.`;
      }
    }
  }
  const cookie = readCookies(request.headers)[CSRF_COOKIE];
  if (cookie === undefined || !SECRET_PATTERN.test(cookie)) return "CSRF cookie not set.";
  const token = form.get(CSRF_FIELD);
  if (token === null || token === "") return "CSRF token missing.";
  if (!MASKED_PATTERN.test(token) || !timingSafeEqual(unmask(token), decode(cookie))) {
    return "CSRF token incorrect.";
  }
  return null;
}

// `scheme://host:port`, or `null` for what is no URL.
function refererOrigin(referer: string): string | null {
  try {
    return new URL(referer).origin;
  } catch {
    return null;
  }
}

function refererAllowed(request: Request, origin: string, policy: OriginPolicy): boolean {
  // Reuse the WebSocket Origin rule: same host, or one of the allowed hosts.
  const headers = new Headers(request.headers);
  headers.set("origin", origin);
  return isOriginAllowed(new Request(request.url, { headers }), policy);
}

function unmask(token: string): Uint8Array {
  const bytes = decode(token);
  const secret = new Uint8Array(SECRET_BYTES);
  for (let i = 0; i < SECRET_BYTES; i++) secret[i] = bytes[i] ^ bytes[SECRET_BYTES + i];
  return secret;
}

function encode(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function decode(text: string): Uint8Array {
  return Uint8Array.fromBase64(text, { alphabet: "base64url" });
}
