/**
 * Sign up, log in and log out: `/sign_up/`, `/log_in/` (GET shows the form, POST sends it)
 * and `POST /log_out/`. Every POST passes the CSRF check first.
 */
import {
  ACCOUNT_EVENTS_GROUP,
  type AccountView,
  type AppRoute,
  clearSessionCookie,
  clientHost,
  endSession,
  FormRefusal,
  type Handler,
  htmlResponse,
  isSecureRequest,
  isValid,
  log,
  logIn,
  logReason,
  NULL_CHARACTERS,
  page,
  pageAccount,
  readCookies,
  readProtectedForm,
  type RequestContext,
  type SafeHtml,
  SESSION_COOKIE,
  signUpErrors,
} from "../mod.ts";
import { logInPage, signUpPage } from "../templates/accounts.ts";
import { formRefused, redirect, tryAgainLater } from "./_forms.ts";
import { RESERVED_USERNAMES } from "../consumers/reserved_names.ts";

/** The one message for a wrong username or a wrong password: it must not tell which. */
export const BAD_CREDENTIALS = "Please enter a correct username and password.";

/** `GET /sign_up/`. */
export const signUpForm: Handler = emptyForm(signUpPage);

// A name that passes for an existing account's (see `UserDirectory.lookalikeOf`).
const LOOKS_TAKEN = "This username looks like one that already exists.";

/** `POST /sign_up/`: creates the account, announces it, and leads to the log-in page. */
export const signUpSubmit: Handler = async (request, context) => {
  const form = await readProtectedForm(request, context);
  if (form instanceof FormRefusal) return formRefused(form);
  const input = {
    // Surrounding spaces (autocomplete, a paste) are dropped, as Django's `UsernameField` does;
    // a password is taken as typed.
    username: (form.get("username") ?? "").trim(),
    password1: form.get("password1") ?? "",
    password2: form.get("password2") ?? "",
  };
  const next = safeNext(form.get("next")) ?? undefined;
  const errors = signUpErrors(input, RESERVED_USERNAMES);
  const { users, layer, signUpThrottle } = context.services;
  // Before the throttle counts it: a name that passes for an account's is a form error.
  if (isValid(errors) && await users.lookalikeOf(input.username) !== null) {
    errors.username.push(LOOKS_TAKEN);
  }
  if (isValid(errors)) {
    // Counted before the slow hash, and kept: each account is for good.
    const attempt = await signUpThrottle.begin(null, clientHost(context.client));
    if ("retryAfterSeconds" in attempt) {
      errors.username.push(
        tryAgainLater("Too many sign-ups from your address.", attempt.retryAfterSeconds),
      );
      const page = await pageAccount(request, context);
      const view = { ...page, username: input.username, errors, next };
      const response = page.finish(htmlResponse(signUpPage(view), { status: 429 }));
      response.headers.set("retry-after", String(attempt.retryAfterSeconds));
      return logReason(response, "too many sign-ups from this address");
    }
    const user = await users.create(input.username, input.password1);
    if (user !== null) {
      log.info(`Account created: ${JSON.stringify(user.username)}`);
      await layer.groupSend(ACCOUNT_EVENTS_GROUP, {
        type: "account.created",
        username: user.username,
      }).catch((error) => log.warn("Could not announce a new account", error));
      const location = next ? `/log_in/?next=${encodeURIComponent(next)}` : "/log_in/";
      return redirect(location);
    }
    // Taken meanwhile: by this name, or else by one that looks like it (a sign-up at the same
    // time, which may not have made its account yet).
    errors.username.push(
      await users.find(input.username) === null
        ? LOOKS_TAKEN
        : "A user with that username already exists.",
    );
  }
  const page = await pageAccount(request, context);
  const view = { ...page, username: input.username, errors, next };
  // The first problem, by field: what the form says beside it.
  const why = [...errors.username, ...errors.password1, ...errors.password2][0] ?? "refused";
  return logReason(page.finish(htmlResponse(signUpPage(view), { status: 400 })), why);
};

/** `GET /log_in/`. */
export const logInForm: Handler = emptyForm(logInPage);

/**
 * `POST /log_in/`: checks the password (throttled per username and address), starts a new
 * session under a new id, and goes to `next` when it is a local path.
 */
export const logInSubmit: Handler = async (request, context) => {
  const form = await readProtectedForm(request, context);
  if (form instanceof FormRefusal) return formRefused(form);
  const username = (form.get("username") ?? "").trim(); // as on sign-up
  const password = form.get("password") ?? "";
  const next = safeNext(form.get("next"));
  const { users, throttle } = context.services;
  const again = (status: number, error: string): Promise<Response> =>
    logInAgain(request, context, { status, error, username, next });
  if (username === "" || password === "") {
    return logReason(await again(400, BAD_CREDENTIALS), "username or password missing");
  }
  // No account's password holds one (sign-up refuses it), and a hash would take "pw\0" for "pw".
  if (password.includes("\0")) return logReason(await again(400, BAD_CREDENTIALS), NULL_CHARACTERS);
  const attempt = await throttle.begin(username, clientHost(context.client));
  if ("retryAfterSeconds" in attempt) {
    const response = await again(
      429,
      tryAgainLater("Too many failed login attempts.", attempt.retryAfterSeconds),
    );
    response.headers.set("retry-after", String(attempt.retryAfterSeconds));
    return logReason(response, "too many failed log-ins");
  }
  const user = await users.verifyCredentials(username, password);
  // The log says which, never the password; the page does not, so names cannot be probed.
  if (user === null) return logReason(await again(400, BAD_CREDENTIALS), "wrong credentials");
  await attempt.succeeded();
  log.info(`Logged in: ${JSON.stringify(user.username)}`);
  return redirect(next ?? "/", await logIn(request, context, user));
};

/** `POST /log_out/`: ends the session, closes its login-required sockets, back to log in. */
export const logOut: Handler = async (request, context) => {
  const form = await readProtectedForm(request, context);
  if (form instanceof FormRefusal) return formRefused(form);
  const sessionId = readCookies(request.headers)[SESSION_COOKIE];
  if (sessionId) {
    const ended = await endSession(context.services, sessionId);
    if (ended !== null) log.info(`Logged out: ${JSON.stringify(ended.username)}`);
  }
  const response = redirect("/log_in/");
  const secure = isSecureRequest(request, context.services.config.trustProxy);
  clearSessionCookie(response.headers, { secure });
  return response;
};

/**
 * `next` when it is a path on this site, normalised (percent-encoded), else `null`. Refuses
 * absolute URLs, scheme-relative `//host` and `/\host` (which browsers read as `//host`), and
 * control characters.
 */
function safeNext(next: string | null | undefined): string | null {
  if (!next || next.length > 2000) return null;
  if (!next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return null;
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return null;
  const base = "http://next.invalid";
  let url: URL;
  try {
    url = new URL(next, base);
  } catch {
    return null;
  }
  if (url.origin !== base) return null;
  // Dot segments are resolved only now: "/.//evil.example/" became "//evil.example/".
  if (url.pathname.startsWith("//")) return null;
  return url.pathname + url.search + url.hash;
}

/** A handler showing a fresh form, carrying the query's `next` when it is a local path. */
function emptyForm(
  render: (view: { csrfToken: string; account: AccountView | null; next?: string }) => SafeHtml,
): Handler {
  return async (request, context) => {
    const page = await pageAccount(request, context);
    const next = safeNext(context.url.searchParams.get("next")) ?? undefined;
    return page.finish(htmlResponse(render({ ...page, next })));
  };
}

async function logInAgain(
  request: Request,
  context: RequestContext,
  view: { status: number; error: string; username: string; next: string | null },
): Promise<Response> {
  const page = await pageAccount(request, context);
  const body = logInPage({
    ...page,
    username: view.username,
    error: view.error,
    next: view.next ?? undefined,
  });
  return page.finish(htmlResponse(body, { status: view.status }));
}

/** Sign up, log in and log out. */
export function accountRoutes(): AppRoute[] {
  return [
    page("GET", "/sign_up/", signUpForm),
    page("POST", "/sign_up/", signUpSubmit),
    page("GET", "/log_in/", logInForm),
    page("POST", "/log_in/", logInSubmit),
    page("POST", "/log_out/", logOut),
  ];
}
