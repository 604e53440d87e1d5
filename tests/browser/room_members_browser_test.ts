import { assertEquals } from "@std/assert";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { browserTest, newContext, openPage, openRoom, step, waitForState } from "./_browser.ts";

const PASSWORD = "correct horse 9";
/**
 * Long enough for a page to reload and reconnect on a busy test machine (500 ms was not, once,
 * in CI), short enough that the leave at the end comes within a few seconds.
 */
const GRACE_MS = 3000;
/** A change within a second or so; the rest absorbs a busy test machine. */
const CHANGE_MS = 2000;

async function signUpAndLogIn(context: BrowserContext, server: TestServer, name: string) {
  const signUp = await openPage(context, server.httpUrl("/sign_up/"));
  await signUp.fill("#id_username", name);
  await signUp.fill("#id_password1", PASSWORD);
  await signUp.fill("#id_password2", PASSWORD);
  await signUp.press("#id_password2", "Enter");
  await signUp.waitForURL(/\/log_in\/$/);
  await signUp.fill("#id_username", name);
  await signUp.fill("#id_password", PASSWORD);
  await signUp.click("button:text('Log in')");
  await signUp.waitForURL(/\/$/);
  await signUp.close();
}

function member(page: Page, name: string): Locator {
  return page.locator(`#room-members li[data-username=${JSON.stringify(name)}]`);
}

/**
 * Starts recording on `page` every time `name` goes from its member list; `removals` reads the
 * count. An observer, not a look at one moment: a leave followed by a join must show too.
 */
async function watchForRemoval(page: Page, name: string): Promise<{ removals(): Promise<number> }> {
  // A script, not a function: the tests are type-checked without the DOM's types.
  await page.evaluate(`(() => {
    globalThis.removals = 0;
    new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.removedNodes) {
          if (node.dataset?.username === ${JSON.stringify(name)}) globalThis.removals++;
        }
      }
    }).observe(document.getElementById("room-members"), { childList: true });
  })()`);
  return { removals: async () => Number(await page.evaluate("globalThis.removals")) };
}

async function members(page: Page): Promise<string[]> {
  return await page.locator("#room-members li").evaluateAll((items) =>
    items.map((item) => item.getAttribute("data-username") ?? "")
  );
}

browserTest("who is in a chat room, in the browser", async (t, browser) => {
  await step(t, "two pages in one room list each other; one leaves, it goes", async () => {
    await using server = await startTestServer({
      passwordIterations: 1,
      allowWeakPasswordHashing: true,
      presenceGraceMs: GRACE_MS,
    });
    await using adaContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    await signUpAndLogIn(adaContext, server, "ada");
    await signUpAndLogIn(bobContext, server, "bob");
    const ada = await openRoom(adaContext, server.httpUrl("/chat/lobby/"));
    const bob = await openRoom(bobContext, server.httpUrl("/chat/lobby/"));

    await member(ada, "bob").waitFor({ timeout: CHANGE_MS });
    await member(bob, "ada").waitFor({ timeout: CHANGE_MS });
    assertEquals(await members(ada), ["ada", "bob"]);
    assertEquals(await members(bob), ["ada", "bob"]);

    // A reload reconnects within the grace: the list is whole again, and bob never saw ada
    // leave, not even for a moment.
    const adaOnBobsPage = await watchForRemoval(bob, "ada");
    await ada.reload();
    await waitForState(ada, "open");
    await member(ada, "bob").waitFor({ timeout: CHANGE_MS });
    assertEquals(await members(ada), ["ada", "bob"]);
    assertEquals(await members(bob), ["ada", "bob"]);
    assertEquals(await adaOnBobsPage.removals(), 0, "bob saw ada leave during her reload");

    await bob.close();
    await member(ada, "bob").waitFor({ state: "detached", timeout: GRACE_MS + CHANGE_MS });
    assertEquals(await members(ada), ["ada"]);
  });

  await step(t, "a page in another room lists only its own members", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const lobby = await openRoom(context, server.httpUrl("/chat/lobby/"));
    await member(lobby, "Anonymous").waitFor({ timeout: CHANGE_MS });
    const kitchen = await openRoom(context, server.httpUrl("/chat/kitchen/"));
    await member(kitchen, "Anonymous").waitFor({ timeout: CHANGE_MS });
    assertEquals(await members(kitchen), ["Anonymous"]);
  });
});
