/**
 * Reading a POSTed form safely: a bounded body, then the CSRF check. A refused form comes back
 * as a {@linkcode FormRefusal} (413 for a body too large, 415 for a body that is not
 * `application/x-www-form-urlencoded`, 403 with Django's CSRF reason) for the app to render
 * as it likes; this module renders nothing.
 *
 * @example
 * ```ts
 * import { FormRefusal, type Handler, readProtectedForm } from "@channels/deno";
 *
 * const rename: Handler = async (request, context) => {
 *   const form = await readProtectedForm(request, context);
 *   if (form instanceof FormRefusal) return new Response(form.reason, { status: form.status });
 *   return new Response(`Renamed to ${form.get("name")}\n`);
 * };
 * ```
 */
import type { RequestContext } from "./context.ts";
import { readBodyText } from "./request_body.ts";
import { csrfFailure } from "../auth/csrf.ts";
import { quoteClipped } from "../telemetry/log.ts";

/** The largest form body accepted, in bytes (the forms here hold a few short fields). */
export const MAX_FORM_BYTES = 64 * 1024;

/** Why a POSTed form was refused, and the status to answer with. */
export class FormRefusal {
  /** 413 for a body too large, 415 for another encoding, 403 for a failed CSRF check. */
  readonly status: 403 | 413 | 415;
  /** For 403, one of Django's CSRF failure reasons, e.g. "CSRF token missing.". */
  readonly reason: string;
  /** True when the CSRF check failed (Django's "CSRF verification failed" page). */
  readonly csrf: boolean;
  /** A 403 marks a failed CSRF check, a 413 a body too large, a 415 another encoding. */
  constructor(status: 403 | 413 | 415, reason: string) {
    this.status = status;
    this.reason = reason;
    this.csrf = status === 403;
  }
}

// A media type as RFC 9110 spells one (type "/" subtype, each a token), of a sane length.
const MEDIA_TYPE = /^[\w!#$&^.+-]{1,64}\/[\w!#$&^.+-]{1,64}$/;

/** The request's form fields, or why it is refused. */
export async function readProtectedForm(
  request: Request,
  context: RequestContext,
): Promise<URLSearchParams | FormRefusal> {
  const text = await readBodyText(request, MAX_FORM_BYTES);
  if (text === null) return new FormRefusal(413, "Form too large");
  const type = request.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  // Another encoding (a multipart upload form) is said to be one, not taken for a form without
  // its CSRF token; a body-less POST is an empty form, refused for its missing token.
  if (text !== "" && type !== "application/x-www-form-urlencoded") {
    // Anything but a plain media type is quoted and cut: a 40 KB header is not sent back whole,
    // nor written to the log.
    const named = type === undefined || type === ""
      ? "a body without a Content-Type"
      : MEDIA_TYPE.test(type)
      ? type
      : quoteClipped(type);
    return new FormRefusal(
      415,
      `Forms are read as application/x-www-form-urlencoded, not ${named}`,
    );
  }
  const form = new URLSearchParams(text);
  const { allowedHosts, trustProxy } = context.services.config;
  const reason = csrfFailure(request, form, { allowedHosts, trustProxy });
  return reason === null ? form : new FormRefusal(403, reason);
}
