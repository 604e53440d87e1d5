/**
 * What any page needs from the accounts layer: who is signed in (for the header's "Log out"
 * or "Log in" / "Sign up"), a CSRF token for its forms, and the cookie that token needs.
 *
 * @example
 * ```ts
 * import {
 *   type AccountView, type Handler, html, htmlResponse, pageAccount, type SafeHtml,
 * } from "@channels/deno";
 *
 * // The app's page template: its header names the signed-in user, or links to "Log in".
 * declare function layout(
 *   options: { title: string; body: SafeHtml; account: AccountView | null },
 * ): SafeHtml;
 *
 * export const somePage: Handler = async (request, context) => {
 *   const page = await pageAccount(request, context);
 *   const body = html`<p>Hi</p>`;
 *   return page.finish(htmlResponse(layout({ title: "Hi", body, account: page.account })));
 * };
 * ```
 */
import type { RequestContext } from "./context.ts";
import { csrfSecret, maskToken } from "../auth/csrf.ts";
import { isSecureRequest, setCsrfCookie } from "../auth/cookies.ts";

/** The signed-in user as a page shows them, with the token their log-out form needs. */
export interface AccountView {
  /** The signed-in user's name. */
  username: string;
  /** A masked CSRF token for the page's log-out form. */
  csrfToken: string;
}

/** The accounts side of one page. */
export interface PageAccount {
  /** The signed-in user for the layout, or `null` when anonymous. */
  readonly account: AccountView | null;
  /** A masked CSRF token for this page's forms. */
  readonly csrfToken: string;
  /** Sets the CSRF cookie if the browser had none, and keeps the answer out of shared caches. */
  finish(response: Response): Response;
}

/** Reads the session and the CSRF cookie of a page request. */
export async function pageAccount(
  request: Request,
  context: RequestContext,
): Promise<PageAccount> {
  const { user } = await context.services.identify(request);
  const { secret, fresh } = csrfSecret(request);
  const csrfToken = maskToken(secret);
  const account = user.isAuthenticated && user.username !== null
    ? { username: user.username, csrfToken }
    : null;
  return {
    account,
    csrfToken,
    finish(response: Response): Response {
      if (fresh) {
        const secure = isSecureRequest(request, context.services.config.trustProxy);
        setCsrfCookie(response.headers, secret, { secure });
      }
      // The page names its user and carries a token: never serve it to anyone else.
      response.headers.append("vary", "Cookie");
      if (!response.headers.has("cache-control")) {
        response.headers.set("cache-control", "private, no-cache");
      }
      return response;
    },
  };
}
