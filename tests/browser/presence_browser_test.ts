import { assertEquals } from "@std/assert";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { ACCOUNT_EVENTS_GROUP } from "../../auth/users.ts";
import type { Config } from "../../server/config.ts";
import { browserTest, newContext, openPage, step, waitForState } from "./_browser.ts";

const PASSWORD = "correct horse 9";
/** The issue asks for changes within 1 s; the extra second absorbs a busy test machine. */
const CHANGE_MS = 2000;

function start(overrides: Partial<Config>): Promise<TestServer> {
  return startTestServer({ passwordIterations: 1, allowWeakPasswordHashing: true, ...overrides });
}

async function signUp(context: BrowserContext, server: TestServer, name: string): Promise<void> {
  const page = await openPage(context, server.httpUrl("/sign_up/"));
  await page.fill("#id_username", name);
  await page.fill("#id_password1", PASSWORD);
  await page.fill("#id_password2", PASSWORD);
  await page.press("#id_password2", "Enter");
  await page.waitForURL(/\/log_in\/$/);
  await page.close();
}

/** Logs in through the form; lands on the user list with its socket open. */
async function logIn(context: BrowserContext, server: TestServer, name: string): Promise<Page> {
  const page = await openPage(context, server.httpUrl("/"));
  await page.waitForURL(/\/log_in\/\?next=/);
  await page.fill("#id_username", name);
  await page.fill("#id_password", PASSWORD);
  await page.click("button:text('Log in')");
  return await openList(page);
}

async function openList(page: Page): Promise<Page> {
  await page.waitForURL(/\/$/);
  await waitForState(page, "open");
  return page;
}

function user(page: Page, name: string): Locator {
  return page.locator(`#presence-list li[data-username=${JSON.stringify(name)}]`);
}

async function waitForStatus(page: Page, name: string, status: "Online" | "Offline") {
  await user(page, name).filter({ hasText: status }).waitFor({ timeout: CHANGE_MS });
}

async function feed(page: Page): Promise<string[]> {
  return await page.locator("#presence-feed .presence-event-text").allTextContents();
}

/** Signs someone up over HTTP and waits until `page` lists them: every earlier diff is in. */
async function sentinel(server: TestServer, page: Page, name: string): Promise<void> {
  await new WebClient(server.url).signUp(name, PASSWORD);
  await user(page, name).waitFor({ timeout: CHANGE_MS });
}

browserTest("the live user list in two browsers", async (t, browser) => {
  await step(t, "sign-ups, log-ins, tabs and log-outs show live in another browser", async () => {
    await using server = await start({ presenceGraceMs: 0 });
    await using aliceContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    await signUp(aliceContext, server, "alice");
    const alice = await logIn(aliceContext, server, "alice");
    await waitForStatus(alice, "alice", "Online");

    await signUp(bobContext, server, "bob");
    await waitForStatus(alice, "bob", "Offline");

    const bobFirstTab = await logIn(bobContext, server, "bob");
    await waitForStatus(alice, "bob", "Online");
    assertEquals(await alice.textContent("#online-count"), "2");
    assertEquals((await feed(alice)).includes("bob connected"), true);
    // Bob's own page tells of his arrival too, as everyone else's does.
    await bobFirstTab.locator("#presence-feed .presence-event-text", { hasText: "bob connected" })
      .waitFor({ timeout: CHANGE_MS });

    const bobSecondTab = await openList(await openPage(bobContext, server.httpUrl("/")));
    await bobFirstTab.close();
    await sentinel(server, alice, "carol");
    assertEquals(await user(alice, "bob").getAttribute("data-online"), "true");
    assertEquals((await feed(alice)).includes("bob disconnected"), false, "bob flickered");

    // Every page of a signed-in user keeps them online, not only the list.
    await bobSecondTab.goto(server.httpUrl("/chat/lobby/"));
    await waitForState(bobSecondTab, "open");
    await sentinel(server, alice, "dave");
    await waitForStatus(alice, "bob", "Online");

    await bobSecondTab.click("button:text('Log out')");
    await bobSecondTab.waitForURL(/\/log_in\//);
    await waitForStatus(alice, "bob", "Offline");
    assertEquals(await alice.textContent("#online-count"), "1");
  });

  await step(t, "a reload does not flicker, and a log-out skips the grace period", async () => {
    await using server = await start({ presenceGraceMs: 60_000 });
    await using aliceContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    await signUp(aliceContext, server, "alice");
    await signUp(bobContext, server, "bob");
    const alice = await logIn(aliceContext, server, "alice");
    const bob = await logIn(bobContext, server, "bob");
    await waitForStatus(alice, "bob", "Online");

    await bob.reload();
    await waitForState(bob, "open");
    await sentinel(server, alice, "carol");
    assertEquals((await feed(alice)).includes("bob disconnected"), false, "bob flickered");

    await bob.click("button:text('Log out')");
    await waitForStatus(alice, "bob", "Offline");
  });

  await step(
    t,
    "a tab whose user logged out in another says so, and lists no one as online",
    async () => {
      await using server = await start({ presenceGraceMs: 0 });
      await using bobContext = await newContext(browser);
      await signUp(bobContext, server, "bob");
      const first = await logIn(bobContext, server, "bob");
      const second = await openList(await openPage(bobContext, server.httpUrl("/")));
      await waitForStatus(second, "bob", "Online");
      await first.click("button:text('Log out')");
      await second.locator("#connection-state", { hasText: "Logged out" }).waitFor();
      assertEquals(await second.locator("#presence-list li").count(), 0);
      assertEquals(await second.textContent("#online-count"), "–");
    },
  );

  await step(t, "usernames reach the page as text, never as markup", async () => {
    await using server = await start({ presenceGraceMs: 0 });
    await using context = await newContext(browser);
    await signUp(context, server, "alice");
    const alice = await logIn(context, server, "alice");
    // The trickiest name the rules allow: Unicode letters and every allowed symbol.
    const tricky = "Zoë.o+b@x-_";
    await new WebClient(server.url).signUp(tricky, PASSWORD);
    await user(alice, tricky).waitFor({ timeout: CHANGE_MS });
    assertEquals(await user(alice, tricky).locator(".presence-name").textContent(), tricky);
    // No account can have this name; the page must still show it as text if told of one.
    const hostile = `<img src=x onerror="document.title='pwned'">`;
    await server.app.services.layer.groupSend(ACCOUNT_EVENTS_GROUP, {
      type: "account.created",
      username: hostile,
    });
    await user(alice, hostile).waitFor({ timeout: CHANGE_MS });
    assertEquals(await user(alice, hostile).locator(".presence-name").textContent(), hostile);
    assertEquals(await alice.locator("#presence-list img").count(), 0);
    assertEquals(await alice.title() === "pwned", false);
  });
});
