/**
 * A live click counter: everyone on the page sees the same count, and it moves for all of them
 * the moment anyone clicks. An app of its own on Channels for Deno's public API.
 */
import {
  type App,
  type AppRoute,
  type Consumer,
  createApp,
  html,
  htmlResponse,
  page,
  type Services,
  socket,
  type UpgradeWebSocket,
} from "@channels/deno";

/** The group every counter socket joins. */
const GROUP = "counter";

/** The count, kept by the app in this process (see the README beside this file). */
export class ClickCount {
  #count = 0;

  /** The count now. */
  get value(): number {
    return this.#count;
  }

  /** Adds one click and returns the new count. */
  click(): number {
    return ++this.#count;
  }
}

/** The counter's socket: the count on connect, then every change; a frame `click` clicks. */
export function counterConsumer(count: ClickCount): Consumer {
  return (conn) => ({
    async connect() {
      await conn.groupAdd(GROUP);
      conn.sendJson({ count: count.value });
    },
    async receive(text) {
      if (text !== "click") {
        conn.sendError('Send "click"');
        return;
      }
      await conn.groupSend(GROUP, { type: "counter.changed", count: count.click() });
    },
    events: {
      "counter.changed": (event) => conn.sendJson({ count: event.count }),
    },
  });
}

function counterPage(count: ClickCount): Response {
  return htmlResponse(html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <title>Live counter</title>
        <script type="module" src="/counter.js"></script>
      </head>
      <body><h1>Clicked <output id="count">${count.value}</output> times</h1>
    <button id="click" type="button">Click</button></body>
    </html>
  `);
}

const CLIENT = `const socket = new WebSocket(\`ws://\${location.host}/ws/counter/\`);
socket.onmessage = (event) => {
  const data = JSON.parse(event.data);
  if (typeof data.count === "number") document.getElementById("count").textContent = data.count;
};
document.getElementById("click").onclick = () => socket.send("click");
`;

/** The counter's route table: its page, its script and its socket. */
export function counterRoutes(count: ClickCount): AppRoute[] {
  return [
    page("GET", "/", () => counterPage(count)),
    page(
      "GET",
      "/counter.js",
      () => new Response(CLIENT, { headers: { "content-type": "text/javascript; charset=utf-8" } }),
    ),
    socket("/ws/counter/", counterConsumer(count)),
  ];
}

/** Builds the counter app over `services` (`upgrade` is the testing communicator's seam). */
export function createCounterApp(services: Services, upgrade?: UpgradeWebSocket): App {
  return createApp({ routes: counterRoutes(new ClickCount()), services, upgrade });
}
