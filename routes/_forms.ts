/**
 * Answers the apps' form handlers share: a form the CSRF check or the size limit refused, a
 * plain-text refusal, and the redirect after a POST.
 */
import { type FormRefusal, htmlResponse, logReason } from "../mod.ts";
import { csrfFailurePage } from "../templates/accounts.ts";

/** A refused form: Django's CSRF failure page, or a plain 413 or 415 (size, encoding). */
export function formRefused(refusal: FormRefusal): Response {
  if (!refusal.csrf) {
    return logReason(plainText(`${refusal.reason}\n`, refusal.status), refusal.reason);
  }
  const page = htmlResponse(csrfFailurePage(refusal.reason), { status: refusal.status });
  return logReason(page, `CSRF verification failed: ${refusal.reason}`);
}

/** `text` as a UTF-8 plain-text answer with `status`. */
export function plainText(text: string, status: number): Response {
  return new Response(text, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** `302 Found` to `location`, with `headers` (the cookies a log-in sets, say). */
export function redirect(location: string, headers: Headers = new Headers()): Response {
  headers.set("location", location);
  return new Response(null, { status: 302, headers });
}

/** "`tooMany` Try again in N minutes.", N the minutes `retryAfterSeconds` rounds up to. */
export function tryAgainLater(tooMany: string, retryAfterSeconds: number): string {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  return `${tooMany} Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`;
}
