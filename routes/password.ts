/**
 * `/account/password/`: a signed-in user changes their password, as with Django's
 * `PasswordChangeView`. GET shows the form; POST (CSRF checked) checks the old password
 * (throttled as log-ins are, so a stolen session cannot guess it), the new one against the
 * sign-up rules, then stores it, ends the user's other sessions, gives this one a new id and
 * leads to `/account/password/done/`. Anonymous visitors are sent to log in first.
 */
import {
  type AppRoute,
  changePassword,
  clientHost,
  FormRefusal,
  htmlResponse,
  logIn,
  loginRequired,
  logReason,
  newPasswordErrors,
  page,
  readCookies,
  readProtectedForm,
  type RequestContext,
  SESSION_COOKIE,
  type SignedInPage,
  UserChangeConflictError,
} from "../mod.ts";
import {
  passwordChangeDonePage,
  type PasswordChangeErrors,
  passwordChangePage,
} from "../templates/password_change.ts";
import { formRefused, redirect, tryAgainLater } from "./_forms.ts";

/** Where the page is. */
export const PASSWORD_PATH = "/account/password/";
/** Where a successful change leads. */
export const PASSWORD_DONE_PATH = "/account/password/done/";
/** Django's message for a wrong old password. */
export const OLD_PASSWORD_INCORRECT =
  "Your old password was entered incorrectly. Please enter it again.";
/** What the form says when other changes to the account kept landing during this one. */
export const CHANGED_MEANWHILE = "Your account was changed at the same moment: please try again.";

/** `POST /account/password/`. */
async function submit(
  request: Request,
  context: RequestContext,
  page: SignedInPage,
): Promise<Response> {
  const form = await readProtectedForm(request, context);
  if (form instanceof FormRefusal) return formRefused(form);
  const { username } = page.account;
  // Taken as typed, as Django's password fields take them (`strip=False`).
  const old = form.get("old_password") ?? "";
  const rules = newPasswordErrors(
    form.get("new_password1") ?? "",
    form.get("new_password2") ?? "",
    username,
  );
  const errors: PasswordChangeErrors = {
    old_password: [],
    new_password1: rules.password1,
    new_password2: rules.password2,
  };
  if (old === "") errors.old_password.push("This field is required.");
  // No account's password holds a NUL (sign-up refuses it): wrong, without a guess counted.
  else if (old.includes("\0")) errors.old_password.push(OLD_PASSWORD_INCORRECT);
  else {
    const throttled = await checkOldPassword(context, username, old);
    if (typeof throttled === "number") return tooManyGuesses(page, throttled);
    if (!throttled) errors.old_password.push(OLD_PASSWORD_INCORRECT);
  }
  const first = [...errors.old_password, ...errors.new_password1, ...errors.new_password2][0];
  if (first !== undefined) {
    const body = passwordChangePage({ account: page.account, csrfToken: page.csrfToken, errors });
    return logReason(page.finish(htmlResponse(body, { status: 400 })), first);
  }
  const sessionId = readCookies(request.headers)[SESSION_COOKIE] ?? null;
  let changed;
  try {
    changed = await changePassword(context.services, username, form.get("new_password1")!, {
      except: sessionId,
    });
  } catch (error) {
    if (!(error instanceof UserChangeConflictError)) throw error;
    // Nothing was written (another tab's password or a staff change kept landing first): the
    // form again, to send once more, rather than a server error.
    return logReason(refused(page, CHANGED_MEANWHILE, 409), "the user kept changing");
  }
  if (changed === null) {
    return logReason(refused(page, "Your account no longer exists.", 403), "no such user");
  }
  // This session stays signed in under a new id, as after a log-in (Django cycles its key).
  const response = redirect(PASSWORD_DONE_PATH, await logIn(request, context, changed.user));
  response.headers.set("cache-control", "no-store");
  return response;
}

// True when `old` is the user's password, false when not, or the seconds to wait when the
// user or address has guessed wrong too often (the log-in's throttle: one count for both).
async function checkOldPassword(
  context: RequestContext,
  username: string,
  old: string,
): Promise<boolean | number> {
  const { throttle, users } = context.services;
  const attempt = await throttle.begin(username, clientHost(context.client));
  if ("retryAfterSeconds" in attempt) return attempt.retryAfterSeconds;
  if (await users.verifyCredentials(username, old) === null) return false;
  await attempt.succeeded();
  return true;
}

// The form again, with an error about all of it (`status` 429: with when to try again; 409: the
// account changed meanwhile).
function refused(page: SignedInPage, error: string, status: number): Response {
  const body = passwordChangePage({ account: page.account, csrfToken: page.csrfToken, error });
  return page.finish(htmlResponse(body, { status }));
}

function tooManyGuesses(page: SignedInPage, retryAfterSeconds: number): Response {
  const response = refused(
    page,
    tryAgainLater("Too many failed password attempts.", retryAfterSeconds),
    429,
  );
  response.headers.set("retry-after", String(retryAfterSeconds));
  return logReason(response, "too many wrong old passwords");
}

/** The password change page, its form, and the page a change leads to. */
export function passwordRoutes(): AppRoute[] {
  return [
    page(
      "GET",
      PASSWORD_PATH,
      loginRequired((_request, _context, page) =>
        page.finish(htmlResponse(passwordChangePage(page)))
      ),
    ),
    page("POST", PASSWORD_PATH, loginRequired(submit)),
    page(
      "GET",
      PASSWORD_DONE_PATH,
      loginRequired((_request, _context, page) =>
        page.finish(htmlResponse(passwordChangeDonePage(page)))
      ),
    ),
  ];
}
