/**
 * The sign-up and log-in pages. Field names and ids are Django's (`username`, `password1`,
 * `password2`, `id_username`…), so forms and tests written for Django fit. Typed passwords
 * are never written back into a page.
 */
import {
  type AccountView,
  html,
  MAX_USERNAME_LENGTH,
  type SafeHtml,
  type SignUpErrors,
} from "../mod.ts";
import { layout } from "./base.ts";
import { csrfField, field, type FieldOptions, NEW_PASSWORD_HELP } from "./_form_fields.ts";

/** What the sign-up page shows. */
export interface SignUpView {
  csrfToken: string;
  account: AccountView | null;
  /** The username as typed, kept after an error. */
  username?: string;
  errors?: SignUpErrors;
  /** Where to go after the log-in that follows (already checked to be a local path). */
  next?: string;
}

/** What the log-in page shows. */
export interface LogInView {
  csrfToken: string;
  account: AccountView | null;
  username?: string;
  /** Where to go after logging in (already checked to be a local path). */
  next?: string;
  /** A message about the whole form (wrong credentials, too many attempts). */
  error?: string;
}

/** `GET /sign_up/` and a sign-up form with errors. */
export function signUpPage(view: SignUpView): SafeHtml {
  const errors = view.errors ?? { username: [], password1: [], password2: [] };
  // The focus goes to the first field with an error, which a screen reader then reads out with
  // it (else it would land on a username that was fine, and say nothing of what was wrong).
  const wrong = (["username", "password1", "password2"] as const)
    .find((name) => errors[name].length > 0) ?? "username";
  const logIn = view.next ? `/log_in/?next=${encodeURIComponent(view.next)}` : "/log_in/";
  return layout({
    title: "Sign up",
    account: view.account,
    body: html`
      <h1>Sign up</h1>
      <form method="post" action="/sign_up/" class="form-stack">
        ${csrfField(view.csrfToken)}
        ${nextField(view.next)}
        ${usernameField(view.username, {
          errors: errors.username,
          help:
            `Required. ${MAX_USERNAME_LENGTH} characters or fewer. Letters, digits and @/./+/-/_ only.`,
          autofocus: wrong === "username",
        })}
        ${field({
          name: "password1",
          label: "Password",
          type: "password",
          autocomplete: "new-password",
          errors: errors.password1,
          help: NEW_PASSWORD_HELP,
          autofocus: wrong === "password1",
        })}
        ${field({
          name: "password2",
          label: "Password confirmation",
          type: "password",
          autocomplete: "new-password",
          errors: errors.password2,
          help: "Enter the same password as before, for verification.",
          autofocus: wrong === "password2",
        })}
        <button type="submit">Sign up</button>
      </form>
      <p>Already have an account? <a href="${logIn}">Log in</a></p>
    `,
  });
}

/** `GET /log_in/` and a log-in form with its error. */
export function logInPage(view: LogInView): SafeHtml {
  // Both fields are what the error is about (which was wrong is not said): each names it, so
  // the focused username reads it out.
  const formError = view.error ? LOG_IN_ERROR : undefined;
  const signUp = view.next ? `/sign_up/?next=${encodeURIComponent(view.next)}` : "/sign_up/";
  return layout({
    title: "Log in",
    account: view.account,
    body: html`
      <h1>Log in</h1>
      ${view.error
        ? html`<p class="notice form-errors" role="alert" id="${LOG_IN_ERROR}">${view.error}</p>`
        : ""}
      <form method="post" action="/log_in/" class="form-stack">
        ${csrfField(view.csrfToken)}
        ${nextField(view.next)}
        ${usernameField(view.username, { errors: [], formError })}
        ${field({
          name: "password",
          label: "Password",
          type: "password",
          autocomplete: "current-password",
          errors: [],
          formError,
        })}
        <button type="submit">Log in</button>
      </form>
      <p>No account yet? <a href="${signUp}">Sign up</a></p>
    `,
  });
}

const LOG_IN_ERROR = "log_in_error";

// The first field of both forms: it takes the focus (unless another field has an error) and
// keeps what was typed after an error.
function usernameField(
  value: string | undefined,
  options: Pick<FieldOptions, "errors" | "help" | "autofocus" | "formError">,
): SafeHtml {
  return field({
    name: "username",
    label: "Username",
    type: "text",
    autocomplete: "username",
    value: value ?? "",
    autofocus: true,
    ...options,
  });
}

function nextField(next: string | undefined): SafeHtml | string {
  return next ? html`<input type="hidden" name="next" value="${next}">` : "";
}

/** Django's 403 page for a failed CSRF check, with the reason. */
export function csrfFailurePage(reason: string): SafeHtml {
  return layout({
    title: "403 Forbidden",
    body: html`<h1>403 Forbidden</h1>
<p>CSRF verification failed. Request aborted.</p>
<p class="error-detail" id="csrf-reason">Reason: ${reason}</p>
<p>Reload the form and send it again. If this keeps happening, make sure your browser accepts
cookies from this site.</p>`,
  });
}
