/**
 * The example app's page in Chromium: its script imports the framework's reconnecting socket
 * from `/channels/`, served by `clientRoutes()`, and a click moves the count on every page.
 */
import { assertEquals } from "@std/assert";
import { serveApp } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { createCounterApp } from "../../examples/live_counter/counter.ts";
import { browserTest, newContext, openPage } from "./_browser.ts";

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
