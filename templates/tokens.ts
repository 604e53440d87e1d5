/**
 * The access tokens page (`/account/tokens/`): the user's live tokens, a form to make one
 * (shown once, right after), and a form to revoke them all.
 */
import { type AccountView, CSRF_FIELD, html, type SafeHtml, type TokenSummary } from "../mod.ts";
import { layout } from "./base.ts";

/** What the tokens page shows. */
export interface TokensView {
  account: AccountView;
  csrfToken: string;
  /** The user's live tokens, oldest first. */
  tokens: TokenSummary[];
  /** A token just made: the only time it is shown. */
  created?: { token: string; expiresAt: number };
  /** How many tokens were just revoked. */
  revoked?: number;
  /** Why no token was made. */
  refused?: string;
}

/** `GET /account/tokens/` and the answers to its two forms. */
export function tokensPage(view: TokensView): SafeHtml {
  return layout({
    title: "Access tokens",
    account: view.account,
    body: html`
      <h1>Access tokens</h1>
      <p>A token lets a client that is not a browser (a terminal client, a script) open
        WebSockets as <strong>${view.account.username}</strong>. Send it as
        <code>Authorization: Bearer &lt;token&gt;</code> or as <code>?token=&lt;token&gt;</code>.
        Anyone holding it can act as you: keep it like a password.</p>
      ${created(view.created)}
      ${view.refused === undefined
        ? ""
        : html`<p class="notice form-errors" role="alert" id="tokens-refused">${view.refused}.</p>`}
      ${view.revoked === undefined ? "" : html`
        <p class="notice" role="status"
          id="tokens-revoked">Revoked ${view.revoked} token${view.revoked === 1
            ? ""
            : "s"}. They are refused from the next connection on.</p>
      `}
      ${tokenList(view.tokens)}
      <form method="post" action="/account/tokens/new/" class="form-stack">
        <input type="hidden" name="${CSRF_FIELD}" value="${view.csrfToken}">
        <button type="submit">Create a token</button>
      </form>
      <form method="post" action="/account/tokens/revoke/" class="form-stack">
        <input type="hidden" name="${CSRF_FIELD}" value="${view.csrfToken}">
        <button type="submit">Revoke all my tokens</button>
      </form>
    `,
  });
}

function created(token: TokensView["created"]): SafeHtml | string {
  if (token === undefined) return "";
  return html`
    <div class="notice" role="status">
      <p>Your new token, valid until ${isoTime(token.expiresAt)}. Copy it now: it is not shown
              again.</p>
      <input type="text" readonly id="new-token" value="${token.token}" size="60"
        autocomplete="off" spellcheck="false" aria-label="New access token">
    </div>
  `;
}

function tokenList(tokens: TokenSummary[]): SafeHtml {
  if (tokens.length === 0) return html`<p id="token-count">You have no live tokens.</p>`;
  return html`
    <p id="token-count">You have ${tokens.length} live token${tokens.length === 1 ? "" : "s"}:</p>
    <ul class="token-list">${tokens.map((token) =>
      html`<li>made ${isoTime(token.createdAt)}, expires ${isoTime(token.expiresAt)}</li>`
    )}</ul>
  `;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}
