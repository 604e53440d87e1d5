import { assertEquals } from "@std/assert";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { browserTest, newContext, openPage, openRoom, step, waitForState } from "./_browser.ts";

const PASSWORD = "correct horse 9";
const GRACE_MS = 500;
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

    // A reload reconnects: the list is whole again, and bob never saw ada leave.
    await ada.reload();
    await waitForState(ada, "open");
    await member(ada, "bob").waitFor({ timeout: CHANGE_MS });
    assertEquals(await members(ada), ["ada", "bob"]);
    assertEquals(await members(bob), ["ada", "bob"]);

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
