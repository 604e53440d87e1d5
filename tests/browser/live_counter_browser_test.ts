/**
 * The example app's page in Chromium: its script imports the framework's reconnecting socket
 * from `/channels/`, served by `clientRoutes()`, and a click moves the count on every page.
 */
import { assertEquals } from "@std/assert";
import { serveApp } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { createCounterApp } from "../../examples/live_counter/counter.ts";
import { browserTest, closedText, newContext, openPage } from "./_browser.ts";

browserTest(
  "the live counter's page runs on the client the framework serves",
  async (_t, browser) => {
    await using services = await createTestServices();
    const app = createCounterApp(services);
    const server = await serveApp(app, { hostname: "127.0.0.1", port: 0 });
    try {
      await using context = await newContext(browser);
      const ada = await openPage(context, `${server.url}/`);
      const bob = await openPage(context, `${server.url}/`);
      for (const page of [ada, bob]) {
        await page.locator("#state", { hasText: "Connected" }).waitFor();
      }
      await ada.click("#click");
      for (const page of [ada, bob]) await page.locator("#count", { hasText: "1" }).waitFor();
      await bob.click("#click");
      for (const page of [ada, bob]) await page.locator("#count", { hasText: "2" }).waitFor();
      assertEquals(await ada.locator("#count").textContent(), "2");
    } finally {
      await server.shutdown();
    }
  },
);

browserTest(
  "a page's socket to a wrong address stops and says why, where a browser's WebSocket does not",
  async (_t, browser) => {
    await using services = await createTestServices();
    const server = await serveApp(createCounterApp(services), { hostname: "127.0.0.1", port: 0 });
    try {
      await using context = await newContext(browser);
      const page = await openPage(context, `${server.url}/`);
      await page.locator("#state", { hasText: "Connected" }).waitFor();
      // What the page's own socket says, once it says "closed" (the app's script would show it).
      assertEquals(
        await closedText(page, "/ws/no-such-route/"),
        "No WebSocket route at /ws/no-such-route/ (404 Not Found)",
      );
      // The browser hides where a redirect goes; the missing slash is what it usually is.
      assertEquals(
        await closedText(page, "/ws/counter"),
        "/ws/counter redirects, which a WebSocket does not follow (a trailing slash missing?)",
      );
    } finally {
      await server.shutdown();
    }
  },
);
