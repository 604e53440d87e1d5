import { type AccountView, CSRF_FIELD, html, type SafeHtml } from "../mod.ts";

/** What the base layout needs from a page. */
export interface LayoutOptions {
  title: string;
  body: SafeHtml;
  /** Scripts under `/static/` to load as modules, e.g. `["chat.js"]`. */
  scripts?: string[];
  /** Extra markup for the header's right side (e.g. the log-out control). */
  header?: SafeHtml;
  /** The signed-in user (a "Log out" button), `null` for "Log in" / "Sign up" links. */
  account?: AccountView | null;
}

/** The base layout every page shares. */
export function layout(options: LayoutOptions): SafeHtml {
  // A signed-in user is online on every page, not only on the user list: without the list,
  // presence.js just holds its socket (a navigation between pages is bridged by the grace).
  const sources = [...(options.scripts ?? [])];
  if (options.account && !sources.includes("presence.js")) sources.push("presence.js");
  const modules = sources.map((src) =>
    html`<script type="module" src="/static/${src}"></script>\n`
  );
  // First, a classic script that says so when a module cannot load (`script_check.js`).
  const scripts = modules.length === 0
    ? modules
    : [html`<script src="/static/script_check.js"></script>\n`, ...modules];
  return html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${options.title}</title>
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
        <link rel="stylesheet" href="/static/site.css">
        ${scripts}
      </head>
      <body>
        <header class="site-header">
          <a href="/chat/" class="brand">Channels</a>
          <nav class="site-nav">${accountNav(options.account)}${options.header ?? ""}</nav>
        </header>
        <main class="site-main">
    ${options.body}
        </main>
      </body>
    </html>
  `;
}

function accountNav(account: AccountView | null | undefined): SafeHtml | string {
  if (account === undefined) return "";
  if (account === null) {
    return html`<a href="/log_in/">Log in</a><a href="/sign_up/">Sign up</a>`;
  }
  return html`
    <span class="signed-in">Signed in as <strong dir="auto">${account.username}</strong></span>
    <a href="/account/tokens/">Tokens</a>
    <a href="/account/password/">Password</a>
    <form method="post" action="/log_out/" class="log-out-form">
      <input type="hidden" name="${CSRF_FIELD}" value="${account.csrfToken}">
      <button type="submit">Log out</button>
    </form>
  `;
}
