/**
 * What every answer of an app carries (`app.ts`): the security headers, unless its route set
 * its own, and no body for a HEAD.
 */
import { withoutBody } from "./_head_answer.ts";

const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "content-security-policy":
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** `answered` as it goes out: with the security headers, and without a body for a HEAD. */
export function finish(request: Request, answered: Response): Response | Promise<Response> {
  if (answered.status === 101) return answered; // an upgrade: its headers are not ours to touch
  let response = answered;
  try {
    addSecurityHeaders(response.headers);
  } catch {
    // Immutable headers (`Response.redirect`, a `fetch` answer passed on): a copy takes them.
    response = new Response(answered.body, answered);
    addSecurityHeaders(response.headers);
  }
  if (request.method === "HEAD" && response.body !== null) return withoutBody(response);
  return response;
}

function addSecurityHeaders(headers: Headers): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    if (!headers.has(name)) headers.set(name, value);
  }
}
