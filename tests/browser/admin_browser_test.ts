/**
 * The admin page in Chromium: a staff user logs in, lands on /admin/ and sees this process's
 * row update as chat sockets come and go; a user who is not staff gets 403. With
 * `UPDATE_SCREENSHOTS=1` the page is saved as `static/admin-screenshot.png` (the README's).
 */
import { assertEquals } from "@std/assert";
import type { Page } from "playwright-core";
import { startTestServer } from "../_support/server.ts";
import { browserTest, newContext, openRoom, step, WAIT_MS, waitForState } from "./_browser.ts";

const PASSWORD = "correct horse 9";
const SCREENSHOT = new URL("../../static/admin-screenshot.png", import.meta.url);

async function logInTo(page: Page, url: string, name: string): Promise<void> {
  await page.goto(url);
  await page.waitForURL(/\/log_in\/\?next=%2Fadmin%2F|\/log_in\/\?next=\/admin\//);
  await page.fill("#id_username", name);
  await page.fill("#id_password", PASSWORD);
  await page.click("button:text('Log in')");
  await page.waitForURL(/\/admin\/$/);
}

/** The text of the first process row's connections cell, once it is `expected`. */
async function waitForConnections(page: Page, expected: number): Promise<void> {
  await page.locator("#processes tbody tr td:nth-child(2)").filter({
    hasText: new RegExp(`^${expected}$`),
  }).first().waitFor({ timeout: WAIT_MS });
}

browserTest("the admin page shows live figures to staff, and 403 to others", async (t, browser) => {
  await using server = await startTestServer();
  const { users } = server.app.services;
  await users.create("ada", PASSWORD, { staff: true });
  await users.create("bob", PASSWORD);

  await step(t, "a staff user sees the process's row follow chat sockets", async () => {
    await using admin = await newContext(browser);
    const page = await admin.newPage();
    await page.setViewportSize({ width: 1100, height: 900 });
    await logInTo(page, server.httpUrl("/admin/"), "ada");
    await waitForState(page, "open");
    // The page's own two: the admin socket and the signed-in layout's presence socket.
    const before = 2;
    await waitForConnections(page, before);
    await using visitors = await newContext(browser);
    const rooms = await Promise.all(
      ["lobby", "lobby", "games"].map((room) =>
        openRoom(visitors, server.httpUrl(`/chat/${room}/`))
      ),
    );
    await waitForConnections(page, before + 3);
    await page.locator("#groups tbody tr", { hasText: "chat.lobby" }).filter({ hasText: /2$/ })
      .waitFor();
    await page.locator("#routes tbody tr", { hasText: "/ws/chat/:room/" }).waitFor();
    assertEquals(await page.locator("#total-processes").textContent(), "1");
    if (Deno.env.get("UPDATE_SCREENSHOTS") === "1") {
      await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true });
    }
    for (const room of rooms) await room.close();
    await waitForConnections(page, before);
  });

  await step(t, "a signed-in user who is not staff gets 403", async () => {
    await using context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(server.httpUrl("/log_in/?next=/admin/"));
    await page.fill("#id_username", "bob");
    await page.fill("#id_password", PASSWORD);
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === "/admin/"),
      page.click("button:text('Log in')"),
    ]);
    assertEquals(response.status(), 403);
    await page.getByText("The admin page is for staff users only.").waitFor();
  });
});
