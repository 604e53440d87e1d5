/**
 * The two cookies of the accounts layer, Django's names and flags: `sessionid` (HttpOnly) and
 * `csrftoken`. Both are SameSite=Lax, Path=/, and Secure when the request came over https.
 */
import { getCookies, setCookie } from "@std/http/cookie";
import { forwardedByProxy } from "./forwarded.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "sessionid";
/** The CSRF cookie's name. */
export const CSRF_COOKIE = "csrftoken";
/** How long the CSRF cookie lives (Django's `CSRF_COOKIE_AGE`: about a year). */
export const CSRF_COOKIE_MAX_AGE = 31_449_600;

/** The request's cookies; a malformed `Cookie` header reads as no cookies, never an error. */
export function readCookies(headers: Headers): Record<string, string> {
  try {
    return getCookies(headers) as Record<string, string>;
  } catch {
    return {};
  }
}

/**
 * True when the client reached us over https: the request URL says so, or, behind a proxy we
 * were told to trust, its `X-Forwarded-Proto` does.
 */
export function isSecureRequest(request: Request, trustProxy: boolean): boolean {
  if (new URL(request.url).protocol === "https:") return true;
  if (!trustProxy) return false;
  return forwardedByProxy(request.headers, "x-forwarded-proto")?.toLowerCase() === "https";
}

/** Sets the session cookie on `headers`. */
export function setSessionCookie(
  headers: Headers,
  id: string,
  options: { maxAgeSeconds: number; secure: boolean },
): void {
  setCookie(headers, {
    name: SESSION_COOKIE,
    value: id,
    maxAge: options.maxAgeSeconds,
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: options.secure,
  });
}

/** Tells the browser to drop its session cookie. */
export function clearSessionCookie(headers: Headers, options: { secure: boolean }): void {
  setCookie(headers, {
    name: SESSION_COOKIE,
    value: "",
    maxAge: 0,
    expires: new Date(0),
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: options.secure,
  });
}

/** Sets the CSRF cookie (not HttpOnly: as in Django, it guards nothing a script could not). */
export function setCsrfCookie(headers: Headers, token: string, options: { secure: boolean }): void {
  setCookie(headers, {
    name: CSRF_COOKIE,
    value: token,
    maxAge: CSRF_COOKIE_MAX_AGE,
    sameSite: "Lax",
    path: "/",
    secure: options.secure,
  });
}
