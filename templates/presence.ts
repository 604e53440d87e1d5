import { type AccountView, html, type PresenceEvent, type SafeHtml } from "../mod.ts";
import { layout } from "./base.ts";
import type { PresenceUser } from "../consumers/presence_snapshot.ts";

/** What the presence page shows when it is first served; `presence.js` keeps it live. */
export interface PresencePageView {
  account: AccountView;
  /** Every registered user with their status, in display order. */
  users: PresenceUser[];
  /** Recent "connected" / "disconnected" events, oldest first. */
  recent: PresenceEvent[];
}

/**
 * `GET /`: every user, Online or Offline, the online count, and the feed. The feed's log role is
 * on a wrapper: on the `<ol>` itself it would take the list's role away from its items.
 */
export function presencePage(view: PresencePageView): SafeHtml {
  const onlineCount = view.users.filter((user) => user.online).length;
  return layout({
    title: "Who is online",
    account: view.account,
    body: html`
      <div class="presence-heading">
        <h1>Who is online</h1>
        <p id="connection-state" class="connection-state" data-state="connecting" role="status">
          Connecting…
        </p>
      </div>
      <p id="presence-notice" class="notice" role="alert" hidden></p>
      <p class="presence-summary"><span id="online-count">${onlineCount}</span> online</p>
      <div class="presence-columns">
        <section aria-labelledby="users-title">
          <h2 id="users-title">Users</h2>
          <ul id="presence-list" class="plain-list presence-list" data-me="${view.account
            .username}">
            ${view.users.map((user) => userItem(user, user.username === view.account.username))}
          </ul>
        </section>
        <section aria-labelledby="feed-title">
          <h2 id="feed-title">Recent activity</h2>
          <div id="presence-feed-log" role="log" aria-live="polite" aria-labelledby="feed-title">
            <ol id="presence-feed" class="plain-list presence-feed">
              ${[...view.recent].reverse().map(feedItem)}
            </ol>
          </div>
        </section>
      </div>
      <noscript><p class="notice">The list stays live only with JavaScript.</p></noscript>
    `,
    scripts: ["presence.js"],
  });
}

/** One user's line; `presence.js` builds the same markup for users added later. */
export function userItem(user: PresenceUser, isMe = false): SafeHtml {
  const status = user.online ? "Online" : "Offline";
  const you = isMe ? html`<span class="presence-you">(you)</span>` : "";
  const name = html`<span class="presence-name" dir="auto">${user.username}</span>`;
  const dot = html`<span class="presence-dot" aria-hidden="true"></span>`;
  const online = String(user.online);
  return html`
    <li class="presence-user" data-username="${user.username}"
      data-online="${online}">${dot}${name} ${you} <span class="presence-status">${status}</span></li>
  `;
}

function feedItem(event: PresenceEvent): SafeHtml {
  // The name isolated: a right-to-left one does not turn the sentence around.
  const text = html`<bdi>${event.username}</bdi> ${event.status}`;
  const time = html`<time datetime="${event.time}">${clock(event.time)}</time>`;
  return html`
    <li class="presence-event"
      data-status="${event.status}"><span class="presence-event-text">${text}</span> ${time}</li>
  `;
}

// The server knows no reader's time zone: it says which one it wrote (the page's script writes
// each time again in the reader's own once it connects).
function clock(iso: string): string {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? "" : `${time.toISOString().slice(11, 19)} UTC`;
}
