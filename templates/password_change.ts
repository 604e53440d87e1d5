/**
 * The password change pages, as Django's `PasswordChangeView` shows them: the form
 * (`old_password`, `new_password1`, `new_password2`, ids `id_<name>`) with its errors beside
 * the fields, and the page it leads to. Typed passwords are never written back into a page.
 */
import { type AccountView, html, type SafeHtml } from "../mod.ts";
import { layout } from "./base.ts";
import { csrfField, field, NEW_PASSWORD_HELP } from "./_form_fields.ts";

/** Each field's errors, by Django's field names. */
export interface PasswordChangeErrors {
  old_password: string[];
  new_password1: string[];
  new_password2: string[];
}

/** What the password change page shows. */
export interface PasswordChangeView {
  account: AccountView;
  csrfToken: string;
  errors?: PasswordChangeErrors;
  /** A message about the whole form (too many wrong old passwords). */
  error?: string;
}

const FIELDS = ["old_password", "new_password1", "new_password2"] as const;

/** `GET /account/password/` and the form again with its errors. */
export function passwordChangePage(view: PasswordChangeView): SafeHtml {
  const errors = view.errors ?? { old_password: [], new_password1: [], new_password2: [] };
  // The focus goes to the first field with an error, as on the sign-up page.
  const wrong = FIELDS.find((name) => errors[name].length > 0) ?? "old_password";
  return layout({
    title: "Password change",
    account: view.account,
    body: html`
      <h1>Password change</h1>
      <p>Please enter your old password, for security’s sake, and then enter your new password
        twice so we can verify you typed it in correctly.</p>
      ${view.error
        ? html`<p class="notice form-errors" role="alert" id="password_change_error">${view.error}</p>`
        : ""}
      <form method="post" action="/account/password/" class="form-stack">
        ${csrfField(view.csrfToken)}
        ${field({
          name: "old_password",
          label: "Old password",
          type: "password",
          autocomplete: "current-password",
          errors: errors.old_password,
          autofocus: wrong === "old_password",
        })}
        ${field({
          name: "new_password1",
          label: "New password",
          type: "password",
          autocomplete: "new-password",
          errors: errors.new_password1,
          help: NEW_PASSWORD_HELP,
          autofocus: wrong === "new_password1",
        })}
        ${field({
          name: "new_password2",
          label: "New password confirmation",
          type: "password",
          autocomplete: "new-password",
          errors: errors.new_password2,
          autofocus: wrong === "new_password2",
        })}
        <button type="submit">Change my password</button>
      </form>
      <p>Changing it logs you out everywhere else: your other browsers and devices, and their
        open connections. Your <a href="/account/tokens/">access tokens</a> keep working:
        revoke them there if someone else may hold one.</p>
    `,
  });
}

/** `GET /account/password/done/`: where a successful change leads. */
export function passwordChangeDonePage(view: { account: AccountView | null }): SafeHtml {
  return layout({
    title: "Password change successful",
    account: view.account,
    body: html`
      <h1>Password change successful</h1>
      <p id="password-changed">Your password was changed. Your other sessions were logged out;
        your <a href="/account/tokens/">access tokens</a> were kept.</p>
    `,
  });
}
