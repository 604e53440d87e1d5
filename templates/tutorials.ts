/**
 * The pages of other tutorials, kept to their own markup so their own scripts run unchanged:
 * RealPython's user list and the "Online Presence Indicator". They do not use the site's
 * layout, which would add the site's own presence script.
 *
 * What differs from the tutorials' templates, for this site's rules:
 * - Their CSS from a CDN (Bootstrap 3.3.7, Bulma 0.9.4) is left out: the Content-Security-Policy
 *   (`default-src 'self'`) allows this site's files only. jQuery is served from `/static/vendor/`.
 * - Their "Log out" links were GETs; logging out here is a POST with a CSRF token, so it is a
 *   one-button form.
 */
import { type AccountView, CSRF_FIELD, html, type SafeHtml } from "../mod.ts";

/** One registered user on RealPython's list. */
export interface ListedUser {
  username: string;
  online: boolean;
}

/** What RealPython's user list shows when it is first served. */
export interface UserListView {
  account: AccountView;
  /** Every registered user, in display order. */
  users: ListedUser[];
}

/**
 * RealPython's `example/user_list.html` on its `_base.html`: every user as
 * `<li data-username="NAME">NAME: Online</li>`, then jQuery 3.1.1 and the tutorial's script.
 */
export function userListPage(view: UserListView): SafeHtml {
  const items = view.users.map((user) => {
    const status = user.online ? "Online" : "Offline";
    return html`<li data-username="${user.username}">${user.username}: ${status}</li>`;
  });
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport"
          content="width=device-width, user-scalable=no, initial-scale=1.0, maximum-scale=1.0, minimum-scale=1.0">
        <meta http-equiv="X-UA-Compatible" content="ie=edge">
        <title>Example Channels</title>
      </head>
      <body>
        <div class="container">
          <br>
          ${logOutForm(view.account)}
          <br>
          <ul>${items}</ul>
        </div>
        <script src="/static/vendor/jquery-3.1.1.min.js"></script>
        <!-- The tutorial's inline script block, verbatim, in a file: this site's CSP blocks inline scripts. -->
        <script src="/static/tutorials/realpython_users.js"></script>
      </body>
    </html>
  `;
}

/** The "Online Presence Indicator" tutorial's `index.html` for a signed-in user. */
export function presenceIndicatorPage(account: AccountView): SafeHtml {
  return html`
    <!DOCTYPE html>
    <html>
      <head>
        <meta charset="utf-8" />
        <title>Online Presence Indicator</title>
      </head>

      <body>
        <div class="container">
          <section class="section">
            <div class="columns">
              <div class="column">
                Hello <strong>${account.username}</strong>
                <br>
                ${logOutForm(account, "Logout")}
                <h1 class="title">Online Presence Indicator</h1>
                <div id="presence"><span class="tag is-success" id="pre_cnt">0</span> users online</div>
                <ul id="messages"></ul>
              </div>
              <div class="column">
                <div class="box">
                  <h1 class="title">Online Users</h1>
                  <div id="online-users"></div>
                </div>
              </div>
            </div>
          </section>
        </div>
        <!-- The tutorial's js/main.js, with the page's own host instead of localhost:8000. -->
        <script type="text/javascript" src="/static/tutorials/presence_indicator.js"></script>
      </body>
    </html>
  `;
}

function logOutForm(account: AccountView, label = "Log out"): SafeHtml {
  return html`
    <form method="post" action="/log_out/" class="log-out-form">
      <input type="hidden" name="${CSRF_FIELD}" value="${account.csrfToken}">
      <button type="submit">${label}</button>
    </form>
  `;
}
