import { type AccountView, html, type SafeHtml } from "../mod.ts";
import { layout } from "./base.ts";
import { MAX_CHAT_MESSAGE } from "../consumers/chat_rooms.ts";

// `maxlength` counts UTF-16 units, the server characters (code points): an emoji is two of the
// one and one of the other. Twice the limit cuts nothing the server takes, in silence; what is
// over the limit the server refuses, and the page says so and keeps the text.
const MESSAGE_UNITS_AT_MOST = 2 * MAX_CHAT_MESSAGE;

/** The room picker: "What chat room would you like to enter?" */
export function chatIndex(account?: AccountView | null): SafeHtml {
  return layout({
    title: "Chat rooms",
    account,
    body: html`
      <h1>What chat room would you like to enter?</h1>
      <form id="room-form" class="inline-form">
        <label class="visually-hidden" for="room-name-input">Room name</label>
        <input id="room-name-input" type="text" size="100" dir="auto"
          aria-describedby="room-name-hint" autofocus required autocomplete="off"
          placeholder="lobby, café au lait, 東京…">
        <input id="room-name-submit" type="submit" value="Enter">
      </form>
      <p id="room-name-hint" class="notice" role="alert" hidden></p>
      <noscript><p class="notice">The chat needs JavaScript to enter a room.</p></noscript>
    `,
    scripts: ["room_picker.js"],
  });
}

/** A chat room; `chat.js` reads the room name from the log's `data-room`. */
export function chatRoom(room: string, account?: AccountView | null): SafeHtml {
  return layout({
    title: `${room} · Chat`,
    account,
    body: html`
      <div class="room-heading">
        <h1 class="room-title" dir="auto">${room}</h1>
        <p id="connection-state" class="connection-state" data-state="connecting" role="status">
          Connecting…
        </p>
      </div>
      <div id="chat-log" class="chat-log" role="log" aria-live="polite" data-room="${room}"></div>
      <p id="chat-notice" class="notice" role="alert" hidden></p>
      <form id="message-form" class="inline-form">
        <label class="visually-hidden" for="chat-message-input">Message</label>
        <input id="chat-message-input" type="text" size="100" dir="auto"
          maxlength="${MESSAGE_UNITS_AT_MOST}"
          autofocus autocomplete="off" placeholder="Write a message and press Enter">
        <input id="chat-message-submit" type="submit" value="Send">
      </form>
      <section class="room-members" aria-labelledby="room-members-title">
        <h2 id="room-members-title">In this room</h2>
        <ul id="room-members" class="plain-list presence-list" aria-live="polite"
          data-me="${account?.username ?? "Anonymous"}"></ul>
      </section>
      <noscript><p class="notice">The chat needs JavaScript to connect.</p></noscript>
    `,
    scripts: ["chat.js"],
  });
}
