/**
 * `/account/tokens/`: a signed-in user makes access tokens for clients that are not browsers,
 * and revokes them. GET shows the page; `POST /account/tokens/new/` makes a token and shows it
 * once; `POST /account/tokens/revoke/` revokes them all and closes the sockets open with them.
 * Both POSTs pass the CSRF check first.
 */
import {
  type AccountView,
  type AppRoute,
  closeTokenSockets,
  FormRefusal,
  type Handler,
  htmlResponse,
  log,
  logReason,
  page,
  type PageAccount,
  pageAccount,
  readProtectedForm,
  type RequestContext,
  TooManyTokensError,
} from "../mod.ts";
import { formRefused, plainText, redirect } from "./_forms.ts";
import { tokensPage, type TokensView } from "../templates/tokens.ts";

/** Where the page is. */
export const TOKENS_PATH = "/account/tokens/";

type SignedIn = PageAccount & { account: AccountView };

/** `GET /account/tokens/`: anonymous visitors are sent to log in, then back here. */
export const tokensForm: Handler = async (request, context) => {
  const page = await pageAccount(request, context);
  if (!signedIn(page)) return toLogIn();
  return await render(context, page, {});
};

/** `POST /account/tokens/new/`: makes a token and shows it, once. */
export const createToken: Handler = async (request, context) => {
  const checked = await signedInForm(request, context);
  if (checked instanceof Response) return checked;
  const { username } = checked.account;
  let issued;
  try {
    issued = await context.services.tokens.create(username);
  } catch (error) {
    if (!(error instanceof TooManyTokensError)) throw error;
    const refused = await render(context, checked, { refused: error.message }, 409);
    return logReason(refused, `${JSON.stringify(username)} holds ${error.limit} tokens already`);
  }
  log.info(`Access token made for ${JSON.stringify(username)}`); // never the token itself
  const created = { token: issued.token, expiresAt: issued.expiresAt };
  return await render(context, checked, { created }, 201);
};

/** `POST /account/tokens/revoke/`: revokes every token of the user. */
export const revokeTokens: Handler = async (request, context) => {
  const checked = await signedInForm(request, context);
  if (checked instanceof Response) return checked;
  const { username } = checked.account;
  const revoked = await context.services.tokens.revokeAll(username);
  log.info(`Access tokens revoked for ${JSON.stringify(username)}: ${revoked}`);
  // The sockets open with them close now (4001, "Token revoked"), not when the tokens expire.
  if (revoked > 0) {
    await closeTokenSockets(context.services.layer, username).catch((error) =>
      log.warn("Could not close the sockets of revoked tokens", error)
    );
  }
  return await render(context, checked, { revoked });
};

async function signedInForm(
  request: Request,
  context: RequestContext,
): Promise<SignedIn | Response> {
  const form = await readProtectedForm(request, context);
  if (form instanceof FormRefusal) return formRefused(form);
  const page = await pageAccount(request, context);
  if (!signedIn(page)) {
    return logReason(plainText("Log in to manage your access tokens\n", 403), "not logged in");
  }
  return page;
}

async function render(
  context: RequestContext,
  page: SignedIn,
  extra: Pick<TokensView, "created" | "revoked" | "refused">,
  status = 200,
): Promise<Response> {
  const tokens = await context.services.tokens.list(page.account.username);
  const body = tokensPage({ account: page.account, csrfToken: page.csrfToken, tokens, ...extra });
  const response = page.finish(htmlResponse(body, { status }));
  // A page that may hold a token is never stored, not even by the browser's back button.
  response.headers.set("cache-control", "no-store");
  return response;
}

function signedIn(page: PageAccount): page is SignedIn {
  return page.account !== null;
}

function toLogIn(): Response {
  return redirect(`/log_in/?next=${encodeURIComponent(TOKENS_PATH)}`);
}

/** The access tokens page and its two forms. */
export function tokenRoutes(): AppRoute[] {
  return [
    page("GET", TOKENS_PATH, tokensForm),
    page("POST", `${TOKENS_PATH}new/`, createToken),
    page("POST", `${TOKENS_PATH}revoke/`, revokeTokens),
  ];
}
