/**
 * The fields the account forms share: a labelled input with its errors and help beside it (ids
 * as Django writes them, `id_<name>`), and the CSRF token's hidden input.
 */
import {
  CSRF_FIELD,
  html,
  MAX_USERNAME_LENGTH,
  MIN_PASSWORD_LENGTH,
  type SafeHtml,
} from "../mod.ts";

/** What a new password must be, under its field (Django's validators, in a sentence). */
export const NEW_PASSWORD_HELP =
  `At least ${MIN_PASSWORD_LENGTH} characters, not entirely numeric, ` +
  "not a common password, not too similar to your username.";

/** One input of a form. */
export interface FieldOptions {
  name: string;
  label: string;
  type: "text" | "password";
  autocomplete: string;
  value?: string;
  errors: string[];
  help?: string;
  autofocus?: boolean;
  /** The id of an error about the whole form that this field is part of. */
  formError?: string;
}

/** A labelled input with its errors and help; a password is never given a value. */
export function field(options: FieldOptions): SafeHtml {
  const id = `id_${options.name}`;
  const invalid = options.errors.length > 0 || options.formError !== undefined;
  const described = [
    options.formError ?? "",
    options.errors.length > 0 ? `${id}_errors` : "",
    options.help ? `${id}_help` : "",
  ].filter(Boolean).join(" ");
  return html`<div class="form-field">
          <label for="${id}">${options.label}</label>
          <input type="${options.type}" name="${options.name}" id="${id}"
            autocomplete="${options.autocomplete}" required
            ${
    options.type === "text"
      ? html`value="${
        options.value ?? ""
      }" maxlength="${MAX_USERNAME_LENGTH}" autocapitalize="none" spellcheck="false"`
      : ""
  }
            ${options.autofocus ? html`autofocus` : ""}
            ${invalid ? html`aria-invalid="true"` : ""}
            ${described ? html`aria-describedby="${described}"` : ""}>
          ${
    options.errors.length > 0
      ? html`<ul class="form-errors" id="${id}_errors">${
        options.errors.map((error) => html`<li>${error}</li>`)
      }</ul>`
      : ""
  }
          ${options.help ? html`<small class="muted" id="${id}_help">${options.help}</small>` : ""}
        </div>`;
}

/** The hidden input carrying the CSRF token. */
export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}
