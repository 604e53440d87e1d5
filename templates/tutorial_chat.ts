/**
 * The Django Channels tutorial's own chat pages (Channels 4.1+, `docs/tutorial/part_1.rst` and
 * `part_2.rst`): `chat/templates/chat/index.html` and `chat/templates/chat/room.html`, with their
 * markup as written, so the tutorial's scripts run unchanged against this server. They do not
 * use the site's layout: the tutorial's pages are bare.
 *
 * What differs from the tutorial's templates, for this site's rules: each inline `<script>` is
 * in a file under `/static/tutorials/`, loaded at the same place with `<script src>`, because
 * the Content-Security-Policy (`default-src 'self'`) blocks inline scripts. The `json_script`
 * element is data (`type="application/json"`), not a script, so it stays in the page.
 */
import { html, SafeHtml } from "../mod.ts";

// Django's `json_script` escapes these three so the JSON cannot end the element or start markup.
const JSON_SCRIPT_ESCAPES: Record<string, string> = {
  "<": "\\u003C",
  ">": "\\u003E",
  "&": "\\u0026",
};

/**
 * Django's `{{ value|json_script:"id" }}` for a string: `json.dumps` (ASCII only, as Python's
 * default `ensure_ascii`) with `<`, `>` and `&` escaped, in a `<script type="application/json">`.
 */
export function jsonScript(id: string, value: string): SafeHtml {
  const json = JSON.stringify(value)
    .replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/[<>&]/g, (char) => JSON_SCRIPT_ESCAPES[char]);
  return html`<script id="${id}" type="application/json">${new SafeHtml(json)}</script>`;
}

/** The tutorial's `chat/index.html`: asks for a room name. */
export function tutorialChatIndex(): SafeHtml {
  return html`
    <!-- chat/templates/chat/index.html -->
    <!DOCTYPE html>
    <html>
      <head>
        <meta charset="utf-8" />
        <title>Chat Rooms</title>
      </head>
      <body>
        What chat room would you like to enter?<br>
        <input id="room-name-input" type="text" size="100"><br>
        <input id="room-name-submit" type="button" value="Enter">

        <!-- The tutorial's inline script, verbatim, in a file (the CSP blocks inline scripts).
            It goes to '/chat/' + roomName + '/': this site's own room page, same protocol. -->
        <script src="/static/tutorials/channels_index.js"></script>
      </body>
    </html>
  `;
}

/** The tutorial's `chat/room.html` for `room`: the log, the input and the Send button. */
export function tutorialChatRoom(room: string): SafeHtml {
  return html`
    <!-- chat/templates/chat/room.html -->
    <!DOCTYPE html>
    <html>
      <head>
        <meta charset="utf-8" />
        <title>Chat Room</title>
      </head>
      <body>
        <textarea id="chat-log" cols="100" rows="20"></textarea><br>
        <input id="chat-message-input" type="text" size="100"><br>
        <input id="chat-message-submit" type="button" value="Send">
        ${jsonScript("room-name", room)}
        <!-- The tutorial's inline script, verbatim, in a file (the CSP blocks inline scripts). -->
        <script src="/static/tutorials/channels_room.js"></script>
      </body>
    </html>
  `;
}
