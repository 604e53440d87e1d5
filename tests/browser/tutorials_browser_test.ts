/**
 * The tutorials' own pages and scripts in Chromium: RealPython's user list, where the
 * tutorial's jQuery script turns other users Online and Offline, and the online presence
 * indicator, whose script keeps `#pre_cnt` and the list of users current.
 */
import { assertEquals } from "@std/assert";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { PRESENCE_INDICATOR_PATH, USER_LIST_PATH } from "../../routes/tutorials.ts";
import { browserTest, newContext, openPage, step } from "./_browser.ts";

const PASSWORD = "correct horse 9";
const CHANGE_MS = 5000;

async function start(users: string[]): Promise<TestServer> {
  // No grace: a closed tab takes its user offline at once, so the test need not wait 3 s.
  const server = await startTestServer({
    passwordIterations: 1,
    allowWeakPasswordHashing: true,
    presenceGraceMs: 0,
  });
  for (const name of users) await new WebClient(server.url).signUp(name, PASSWORD);
  return server;
}

/** Opens `path`, is sent to the log-in form, logs in there, and comes back to `path`. */
async function logInAt(
  context: BrowserContext,
  server: TestServer,
  name: string,
  path: string,
): Promise<Page> {
  const page = await openPage(context, server.httpUrl(path));
  await page.waitForURL(/\/log_in\/\?next=/);
  await page.fill("#id_username", name);
  await page.fill("#id_password", PASSWORD);
  await page.click("button:text('Log in')");
  await page.waitForURL(server.httpUrl(path));
  return page;
}

function listed(page: Page, name: string): Locator {
  return page.locator(`li[data-username=${JSON.stringify(name)}]`);
}

async function waitForText(locator: Locator, text: string): Promise<void> {
  await locator.filter({ hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: CHANGE_MS });
}

async function waitForCount(page: Page, count: number): Promise<void> {
  await waitForText(page.locator("#pre_cnt"), String(count));
}

browserTest("the tutorials' own pages in the browser", async (t, browser) => {
  await step(t, "RealPython's list turns another user Online and Offline", async () => {
    await using server = await start(["ada", "bob"]);
    await using adaContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    const ada = await logInAt(adaContext, server, "ada", USER_LIST_PATH);
    await waitForText(listed(ada, "ada"), "ada: Online");
    await waitForText(listed(ada, "bob"), "bob: Offline");

    const bob = await logInAt(bobContext, server, "bob", USER_LIST_PATH);
    await waitForText(listed(ada, "bob"), "bob: Online");
    await waitForText(listed(bob, "ada"), "ada: Online");

    await bob.close(); // the last tab: bob goes offline
    await waitForText(listed(ada, "bob"), "bob: Offline");

    const again = await openPage(bobContext, server.httpUrl(USER_LIST_PATH));
    await waitForText(listed(ada, "bob"), "bob: Online");
    await again.click("button:text('Log out')");
    await again.waitForURL(/\/log_in\/$/);
    await waitForText(listed(ada, "bob"), "bob: Offline");
    await waitForText(listed(ada, "ada"), "ada: Online");
  });

  await step(t, "the presence indicator counts users, not tabs", async () => {
    await using server = await start(["ada", "bob"]);
    await using adaContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    const ada = await logInAt(adaContext, server, "ada", PRESENCE_INDICATOR_PATH);
    await waitForCount(ada, 1);

    const bob = await logInAt(bobContext, server, "bob", PRESENCE_INDICATOR_PATH);
    await waitForCount(ada, 2);
    await waitForCount(bob, 2);
    await waitForText(ada.locator("#messages li").last(), "bob Connected");
    assertEquals(await ada.locator("#online-users li.on-us").allTextContents(), ["ada", "bob"]);

    const bobTab2 = await openPage(bobContext, server.httpUrl(PRESENCE_INDICATOR_PATH));
    await waitForCount(bobTab2, 2);
    await bob.close();
    await bobTab2.close();
    await waitForText(ada.locator("#messages li").last(), "bob Disconnected");
    await waitForCount(ada, 1);
    assertEquals(await ada.locator("#online-users li.on-us").allTextContents(), ["ada"]);
    // bob's two tabs were one user: connected once, disconnected once.
    assertEquals(await ada.locator("#messages li").allTextContents(), [
      "ada Connected",
      "bob Connected",
      "bob Disconnected",
    ]);
  });
});
