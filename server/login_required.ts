/**
 * Pages for signed-in users only, as Django's `@login_required` does it: an anonymous visitor
 * is redirected to the log-in page with `next` set to the page, and comes back after logging in.
 *
 * @example
 * ```ts
 * import { type Handler, loginRequired } from "@channels/deno";
 *
 * const secret: Handler = loginRequired((_request, _context, page) =>
 *   new Response(`Hello ${page.account.username}`)
 * );
 * ```
 */
import type { Handler, RequestContext } from "./context.ts";
import { type AccountView, type PageAccount, pageAccount } from "./page_account.ts";

/** The accounts side of a page whose visitor is signed in. */
export interface SignedInPage extends PageAccount {
  /** The signed-in user. */
  readonly account: AccountView;
}

/** Renders a page for a signed-in visitor. */
export type SignedInHandler = (
  request: Request,
  context: RequestContext,
  page: SignedInPage,
) => Response | Promise<Response>;

/** Options of {@linkcode loginRequired}. */
export interface LoginRequiredOptions {
  /** Where anonymous visitors are sent (default `/log_in/`, Django's `LOGIN_URL` idea). */
  loginUrl?: string;
}

/** A handler that runs `render` for signed-in visitors and sends others to log in first. */
export function loginRequired(
  render: SignedInHandler,
  options: LoginRequiredOptions = {},
): Handler {
  const loginUrl = options.loginUrl ?? "/log_in/";
  return async (request, context) => {
    const page = await pageAccount(request, context);
    if (page.account === null) {
      // The whole path with its query, as Django's `redirect_to_login` sends it: one value. But
      // not an access token: pages do not take one, and in `next` it would reach the log-in
      // page's access line and the browser's history.
      const path = context.url.pathname + withoutToken(context.url);
      const next = encodeURIComponent(path).replaceAll("%2F", "/");
      return new Response(null, {
        status: 302,
        headers: { location: withNext(loginUrl, next), "cache-control": "no-store" },
      });
    }
    return await render(request, context, { ...page, account: page.account });
  };
}

// `loginUrl` with `next` in its query, as Django's `redirect_to_login` merges it: a log-in URL's
// own query (`?lang=en`) is kept, a `next` of its own replaced, its fragment left at the end.
function withNext(loginUrl: string, next: string): string {
  const hashAt = loginUrl.indexOf("#");
  const fragment = hashAt < 0 ? "" : loginUrl.slice(hashAt);
  const beforeHash = hashAt < 0 ? loginUrl : loginUrl.slice(0, hashAt);
  const queryAt = beforeHash.indexOf("?");
  if (queryAt < 0) return `${beforeHash}?next=${next}${fragment}`;
  const query = new URLSearchParams(beforeHash.slice(queryAt + 1));
  query.delete("next");
  const kept = query.size === 0 ? "" : `${query}&`;
  return `${beforeHash.slice(0, queryAt)}?${kept}next=${next}${fragment}`;
}

// The query of `url` without its `token` parameters (any case, as the log redacts them).
function withoutToken(url: URL): string {
  const query = new URLSearchParams(url.search);
  const names = [...new Set(query.keys())].filter((name) => name.toLowerCase() === "token");
  if (names.length === 0) return url.search;
  for (const name of names) query.delete(name);
  const rest = query.toString();
  return rest === "" ? "" : `?${rest}`;
}
