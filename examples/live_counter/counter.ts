/**
 * A live click counter: everyone on the page sees the same count, and it moves for all of them
 * the moment anyone clicks. An app of its own on Channels for Deno's public API.
 */
import {
  type App,
  type AppRoute,
  clientRoutes,
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

/**
 * The count, kept by the app in this process: with several processes each would count its own
 * clicks, so an app that runs more than one keeps it in the store instead.
 */
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
    <button id="click" type="button">Click</button> <span id="state">Connecting…</span></body>
    </html>
  `);
}

// The page's script: the framework's reconnecting socket, served by \`clientRoutes()\`, so the
// count comes back by itself after a lost connection (the consumer sends it on every connect).
const CLIENT = `import { LiveSocket } from "/channels/live_socket.js";

const scheme = location.protocol === "https:" ? "wss" : "ws";
const live = new LiveSocket(\`\${scheme}://\${location.host}/ws/counter/\`, {
  // Finds a connection that died without a close (Wi-Fi gone) within 35 s, and makes it again.
  heartbeat: { idleMs: 25_000, timeoutMs: 10_000 },
  onState: (_state, text) => (document.getElementById("state").textContent = text),
  onFrame: (frame) => {
    if (typeof frame.count === "number") document.getElementById("count").textContent = frame.count;
  },
});
live.start();
document.getElementById("click").onclick = () => live.isOpen && live.send("click");
`;

/** The counter's route table: its page, its script, the framework's client and its socket. */
export function counterRoutes(count: ClickCount): AppRoute[] {
  return [
    ...clientRoutes(),
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
