/**
 * A handshake the server refuses for good, in Chromium: the browser's WebSocket sees only 1006,
 * as for a server that is down, yet the client module stops and gives the server's reason.
 */
import { assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { browserTest, newContext, openPage, WAIT_MS } from "./_browser.ts";

browserTest(
  "a refused handshake stops the client's attempts with the server's reason, not 'Reconnecting' for ever",
  async (_t, browser) => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/"));
    // What a page's own socket says once it says "closed" (an app's script would show it).
    // Bounded: a socket that never says "closed" fails with the states it went through.
    const closedText = (path: string) =>
      page.evaluate(async ({ path, waitMs }) => {
        const { LiveSocket } = await import("/channels/live_socket.js");
        const seen: string[] = [];
        return await new Promise<string>((resolve, reject) => {
          const live = new LiveSocket(path, {
            backoff: { initialMs: 50, maxMs: 200 },
            onState: (state: string, text: string) => {
              seen.push(`${state}: ${text}`);
              if (state === "closed") resolve(text);
            },
          });
          setTimeout(() => {
            live.stop();
            reject(new Error(`not closed within ${waitMs} ms: ${seen.join(" | ")}`));
          }, waitMs);
          live.start();
        });
      }, { path, waitMs: WAIT_MS });
    // A signed-out page on a login-required route.
    assertEquals(
      await closedText("/ws/presence/state/"),
      "Login required: log in to open this connection",
    );
    // A room the chat consumer refuses in `connect`: its reason, which only the handshake's
    // 403 carried, comes back through the GET.
    assertEquals(
      await closedText("/ws/chat/%20lobby/"),
      "A room name has no spaces at either end",
    );
  },
);
