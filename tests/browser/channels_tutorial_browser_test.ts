/**
 * The Django Channels tutorial's own pages (`index.html`, `room.html`) and scripts in Chromium,
 * against this server: a message typed in one tutorial page reaches every page of the room,
 * and the tutorial's room picker leads to this site's own room page.
 */
import { assertEquals } from "@std/assert";
import type { BrowserContext, Page } from "playwright-core";
import { startTestServer } from "../_support/server.ts";
import {
  browserTest,
  newContext,
  openPage,
  openRoom,
  sendMessage,
  step,
  WAIT_MS,
  waitForMessage,
  waitForState,
} from "./_browser.ts";

/**
 * Opens the tutorial's room page and waits until its socket is open. The tutorial's script
 * declares `chatSocket` at the top level, so the page's global scope can read it. Errors the
 * script logs ("Chat socket closed unexpectedly") are collected in `errors`.
 */
async function openTutorialRoom(
  context: BrowserContext,
  url: string,
  errors: string[],
): Promise<Page> {
  const page = await context.newPage();
  page.on("console", (message) => {
    // Every error: the page's own script's, and a failed request (such as /favicon.ico, which
    // the tutorial's page does not declare, and the site now answers).
    if (message.type() === "error") errors.push(`${message.text()} (${message.location().url})`);
  });
  await page.goto(url);
  await inPage(
    page,
    "the socket to open",
    `(done) => {
      if (chatSocket.readyState === WebSocket.OPEN) done();
      else chatSocket.addEventListener("open", () => done());
    }`,
  );
  return page;
}

/** Waits until the tutorial's `#chat-log` textarea holds exactly `text`. */
async function waitForLog(page: Page, text: string): Promise<void> {
  // Listeners run in the order they were added: this one after the tutorial's `onmessage`.
  await inPage(
    page,
    `the log to read ${JSON.stringify(text)}`,
    `(done) => {
      const log = document.querySelector("#chat-log");
      const check = () => { if (log.value === ${JSON.stringify(text)}) done(); };
      check();
      chatSocket.addEventListener("message", check);
    }`,
  );
}

/**
 * Runs `waiter` (the source of `(done) => ...`) in the page and waits until it calls `done`,
 * or fails after {@linkcode WAIT_MS}. Not `page.waitForFunction`: it polls with `eval`, which
 * the site's Content-Security-Policy forbids; `page.evaluate` is not subject to it.
 */
async function inPage(page: Page, what: string, waiter: string): Promise<void> {
  await page.evaluate(`new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(${
    JSON.stringify(`Timed out waiting for ${what}`)
  })), ${WAIT_MS});
    (${waiter})(resolve);
  })`);
}

browserTest("the Channels tutorial's own pages in the browser", async (t, browser) => {
  await step(t, "a message typed in one tutorial room page reaches both", async () => {
    await using server = await startTestServer();
    await using aliceContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    const errors: string[] = [];
    const alice = await openTutorialRoom(
      aliceContext,
      server.httpUrl("/tutorial/chat/lobby/"),
      errors,
    );
    const bob = await openTutorialRoom(bobContext, server.httpUrl("/tutorial/chat/lobby/"), errors);

    // The tutorial focuses the input and its keyup handler clicks Send on Enter.
    await alice.locator("#chat-message-input:focus").waitFor();
    await alice.keyboard.type("hello");
    await alice.keyboard.press("Enter");
    await waitForLog(alice, "hello\n");
    await waitForLog(bob, "hello\n");
    assertEquals(await alice.inputValue("#chat-message-input"), "");

    // Enter on an empty input: the page prints every frame's `message`, so the refusal's
    // reason, to the sender only (where it once printed "undefined").
    await alice.keyboard.press("Enter");
    await waitForLog(alice, "hello\nMessage is empty\n");
    await alice.keyboard.type("again");
    await alice.keyboard.press("Enter");
    await waitForLog(bob, "hello\nagain\n");
    assertEquals(errors, []);
  });

  await step(t, "the tutorial's page and the site's own page share a room", async () => {
    await using server = await startTestServer();
    await using tutorialContext = await newContext(browser);
    await using siteContext = await newContext(browser);
    const errors: string[] = [];
    const room = "café au lait";
    const tutorial = await openTutorialRoom(
      tutorialContext,
      server.httpUrl(`/tutorial/chat/${encodeURIComponent(room)}/`),
      errors,
    );
    const site = await openRoom(siteContext, server.httpUrl(`/chat/${encodeURIComponent(room)}/`));

    await sendMessage(site, "from the site");
    await waitForLog(tutorial, "from the site\n");
    await tutorial.locator("#chat-message-input").fill("from the tutorial");
    await tutorial.click("#chat-message-submit");
    await waitForMessage(site, "from the tutorial");
    await waitForLog(tutorial, "from the site\nfrom the tutorial\n");
    assertEquals(errors, []);
  });

  await step(t, "the tutorial's index page goes to the site's own room page", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/tutorial/chat/"));
    await page.locator("#room-name-input:focus").waitFor();
    await page.keyboard.type("café au lait");
    await page.keyboard.press("Enter");
    await page.waitForURL(server.httpUrl("/chat/caf%C3%A9%20au%20lait/"));
    await waitForState(page, "open");
    assertEquals(await page.locator("h1").textContent(), "café au lait");
  });
});
