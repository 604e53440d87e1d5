/**
 * Reading a POSTed form safely: a bounded body, then the CSRF check. A refused form becomes
 * the answer (403 with the reason, 413 for a body too large), so a handler does
 * `const form = await readProtectedForm(request, context); if (form instanceof Response) return form;`.
 */
import type { RequestContext } from "../server/context.ts";
import { readBodyText } from "../server/request_body.ts";
import { csrfFailure } from "./csrf.ts";
import { html, htmlResponse } from "../templates/html.ts";
import { layout } from "../templates/base.ts";

/** The largest form body accepted, in bytes (the forms here hold a few short fields). */
export const MAX_FORM_BYTES = 64 * 1024;

/** The request's form fields, or the answer that refuses it. */
export async function readProtectedForm(
  request: Request,
  context: RequestContext,
): Promise<URLSearchParams | Response> {
  const text = await readBodyText(request, MAX_FORM_BYTES);
  if (text === null) {
    return new Response("Form too large\n", {
      status: 413,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  const type = request.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  // Other encodings are not ours: an empty form then fails on its missing token.
  const form = new URLSearchParams(type === "application/x-www-form-urlencoded" ? text : "");
  const { allowedHosts, trustProxy } = context.services.config;
  const reason = csrfFailure(request, form, { allowedHosts, trustProxy });
  return reason === null ? form : csrfRefusal(reason);
}

/** Django's 403 page for a failed CSRF check, with the reason. */
function csrfRefusal(reason: string): Response {
  return htmlResponse(
    layout({
      title: "403 Forbidden",
      body: html`<h1>403 Forbidden</h1>
<p>CSRF verification failed. Request aborted.</p>
<p class="error-detail" id="csrf-reason">Reason: ${reason}</p>
<p>Reload the form and send it again. If this keeps happening, make sure your browser accepts
cookies from this site.</p>`,
    }),
    { status: 403 },
  );
}
