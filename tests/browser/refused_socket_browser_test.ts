/**
 * A handshake the server refuses for good, in Chromium: the browser's WebSocket sees only 1006,
 * as for a server that is down, yet the client module stops and gives the server's reason.
 */
import { assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { browserTest, closedText, newContext, openPage } from "./_browser.ts";

browserTest(
  "a refused handshake stops the client's attempts with the server's reason, not 'Reconnecting' for ever",
  async (_t, browser) => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/"));
    // What a page's own socket says once it says "closed" (an app's script would show it).
    const quick = { backoff: { initialMs: 50, maxMs: 200 } };
    // A signed-out page on a login-required route.
    assertEquals(
      await closedText(page, "/ws/presence/state/", quick),
      "Login required: log in to open this connection",
    );
    // A room the chat consumer refuses in `connect`: its reason, which only the handshake's
    // 403 carried, comes back through the GET.
    assertEquals(
      await closedText(page, "/ws/chat/%20lobby/", quick),
      "A room name has no spaces at either end",
    );
  },
);
