import { assertEquals } from "@std/assert";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { ACCOUNT_EVENTS_GROUP } from "../../auth/users.ts";
import type { Config } from "../../server/config.ts";
import {
  browserTest,
  dropSockets,
  keepSockets,
  newContext,
  openPage,
  step,
  submitLogIn,
  waitForState,
} from "./_browser.ts";

const PASSWORD = "correct horse 9";
/** The issue asks for changes within 1 s; the extra second absorbs a busy test machine. */
const CHANGE_MS = 2000;
/**
 * The grace of a tab in the password change step: it must outlast a page load and a socket's
 * reconnect (0.5 s and more of back-off) on a busy test machine.
 */
const RENEWAL_GRACE_MS = 6000;

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

/** What a person's coming back to a tab does: the browser shows it and focuses it. */
async function lookAt(page: Page): Promise<void> {
  await page.bringToFront();
  // Headless Chromium counts every page as shown and focused all along: no event would say it
  // came back, so the one a person's return gives the page is sent here.
  await page.evaluate('dispatchEvent(new Event("focus"))');
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

/**
 * Starts recording on `page` every time its list shows `name` leave (marked offline or taken
 * out); `leaves` reads the count. An observer, not a look at one moment: a leave followed by a
 * join must show too.
 */
async function watchForLeave(page: Page, name: string): Promise<{ leaves(): Promise<number> }> {
  // A script, not a function: the tests are type-checked without the DOM's types.
  await page.evaluate(`(() => {
    const name = ${JSON.stringify(name)};
    globalThis.leaves = 0;
    new MutationObserver((records) => {
      for (const record of records) {
        const item = record.target;
        if (record.type === "attributes" && item.dataset.username === name &&
            item.dataset.online !== "true") globalThis.leaves++;
        for (const node of record.removedNodes) {
          if (node.dataset?.username === name) globalThis.leaves++;
        }
      }
    }).observe(document.getElementById("presence-list"), {
      childList: true,
      subtree: true,
      attributeFilter: ["data-online"],
    });
  })()`);
  return { leaves: async () => Number(await page.evaluate("globalThis.leaves")) };
}

/**
 * Starts recording every state and text the connection label of `page` shows; `shown` reads
 * them, and `settled` waits until the socket closed and then either opened again or stopped.
 */
async function watchConnection(page: Page): Promise<{
  shown(): Promise<string[]>;
  settled(): Promise<void>;
}> {
  // The page's CSP forbids the eval `waitForFunction` needs: the recorder marks the moment on
  // the page's body, for `waitForSelector`.
  await page.evaluate(`(() => {
    const label = document.getElementById("connection-state");
    globalThis.labels = [];
    let closed = false;
    let settled = false;
    const observer = new MutationObserver(() => {
      const state = label.dataset.state;
      globalThis.labels.push(state + ": " + label.textContent);
      if (state === "reconnecting" || state === "closed") closed = true;
      // Once, and not observed: a mark the observer saw would call it again, for ever.
      if (closed && (state === "open" || state === "closed") && !settled) {
        settled = true;
        document.body.dataset.testSettled = "";
      }
    });
    observer.observe(label, { attributes: true, childList: true, characterData: true, subtree: true });
  })()`);
  return {
    shown: async () => await page.evaluate("globalThis.labels") as string[],
    async settled() {
      await page.waitForSelector("body[data-test-settled]", {
        timeout: RENEWAL_GRACE_MS,
      });
    },
  };
}

/** Fills the password change form of `page` and waits for the page that says it is done. */
async function changePassword(page: Page, server: TestServer, to: string): Promise<void> {
  await page.goto(server.httpUrl("/account/password/"));
  await page.fill("#id_old_password", PASSWORD);
  await page.fill("#id_new_password1", to);
  await page.fill("#id_new_password2", to);
  await page.press("#id_new_password2", "Enter");
  await page.waitForURL(/\/account\/password\/done\/$/);
}

/**
 * Waits until the server has `count` live sockets: those that closed have run their
 * `disconnect`, so their grace period has started. The server tells of no such moment, so this
 * looks every few milliseconds.
 */
async function waitForLiveSockets(server: TestServer, count: number): Promise<void> {
  const deadline = Date.now() + CHANGE_MS;
  while (server.app.live.size !== count) {
    if (Date.now() > deadline) {
      throw new Error(`The server has ${server.app.live.size} live sockets, not ${count}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
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
    "a tab whose user logged out in another says so, lists no one, and is live again once looked at after a log-in",
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

      // Signed in again in the first tab, the second is live again once it is looked at.
      await first.waitForURL(/\/log_in\/$/);
      await submitLogIn(first, "bob", PASSWORD, server.httpUrl("/"));
      await lookAt(second);
      await waitForState(second, "open");
      await waitForStatus(second, "bob", "Online");
      assertEquals(await second.textContent("#online-count"), "1");
      assertEquals(await second.locator("#presence-notice").isVisible(), false);
    },
  );

  await step(t, "a logged-out tab looked at while still signed out stays closed", async () => {
    await using server = await start({ presenceGraceMs: 0 });
    await using bobContext = await newContext(browser);
    await signUp(bobContext, server, "bob");
    const first = await logIn(bobContext, server, "bob");
    const second = await openList(await openPage(bobContext, server.httpUrl("/")));
    await first.click("button:text('Log out')");
    await second.locator("#connection-state", { hasText: "Logged out" }).waitFor();
    const sockets: string[] = [];
    second.on("websocket", (socket) => sockets.push(socket.url()));
    const answer = second.waitForResponse((response) =>
      new URL(response.url()).pathname === "/ws/presence/state/"
    );
    await lookAt(second);
    assertEquals((await answer).status(), 403, "the page did not ask, or was let in");
    await second.locator("#connection-state", { hasText: "Still logged out" }).waitFor();
    assertEquals(await second.getAttribute("#connection-state", "data-state"), "closed");
    // Asked over HTTP: a refused handshake would be logged, and make the label say "refused".
    assertEquals(sockets, [], "the page tried a socket");
  });

  await step(
    t,
    "a tab whose user logged out while its connection was down lists no one once refused, and is live again once looked at after a log-in",
    async () => {
      await using server = await start({ presenceGraceMs: 0 });
      await using bobContext = await newContext(browser);
      await keepSockets(bobContext);
      await signUp(bobContext, server, "bob");
      const page = await logIn(bobContext, server, "bob");
      await waitForStatus(page, "bob", "Online");
      // The log-out's 4001 never reaches this page: its session is gone when it reconnects.
      await bobContext.clearCookies();
      await dropSockets(page);
      await page.locator("#connection-state", { hasText: "Login required" }).waitFor();
      assertEquals(await page.locator("#presence-list li").count(), 0);
      assertEquals(await page.textContent("#online-count"), "–");

      const login = await openPage(bobContext, server.httpUrl("/log_in/"));
      await submitLogIn(login, "bob", PASSWORD, server.httpUrl("/"));
      await lookAt(page);
      await waitForState(page, "open");
      await waitForStatus(page, "bob", "Online");
    },
  );

  await step(
    t,
    "a chat page and a presence page that reconnect as another user (signed in elsewhere while they were away) say so",
    async () => {
      await using server = await start({ presenceGraceMs: 0 });
      await using adaContext = await newContext(browser);
      await using bobContext = await newContext(browser);
      await keepSockets(adaContext);
      await signUp(adaContext, server, "ada");
      await signUp(bobContext, server, "bob");
      const list = await logIn(adaContext, server, "ada");
      await list.locator("#presence-list li", { hasText: "ada (you)" }).waitFor();
      await logIn(bobContext, server, "bob");
      const room = await openPage(adaContext, server.httpUrl("/chat/switch/"));
      await waitForState(room, "open");
      await room.locator("#room-members li", { hasText: "ada (you)" }).waitFor();
      // bob is in the room already, on a page of his own: listed before the switch.
      const bobsRoom = await openPage(bobContext, server.httpUrl("/chat/switch/"));
      await waitForState(bobsRoom, "open");
      await room.locator("#room-members li", { hasText: "bob" }).waitFor();
      // The browser is bob's now (a log-in in another tab while the connections were down: no
      // close reached these pages), then the connections come back. The names in the notices are
      // isolated (U+2068 ... U+2069), as a right-to-left one reads in the lists.
      await adaContext.addCookies(await bobContext.cookies());
      await dropSockets(room);
      await dropSockets(list);
      await room.locator("#chat-notice", {
        hasText: "This page now writes as \u2068bob\u2069, not as \u2068ada\u2069",
      })
        .waitFor();
      await room.locator("#room-members li", { hasText: "bob (you)" }).waitFor();
      assertEquals(await room.locator("#room-members .presence-you").count(), 1, "one (you)");
      await list.locator("#presence-notice", {
        hasText: "now signed in as \u2068bob\u2069, not as \u2068ada\u2069",
      })
        .waitFor();
      await list.locator("#presence-list li", { hasText: "bob (you)" }).waitFor();
      assertEquals(await list.locator("#presence-list .presence-you").count(), 1, "one (you)");
      await waitForState(list, "open");
      // Left for another page and shown again from the back/forward cache: its socket closed
      // (which hides the notice: the label says why) and opened again, still bob's.
      await list.evaluate(
        'dispatchEvent(new PageTransitionEvent("pagehide", { persisted: true }))',
      );
      await dropSockets(list);
      await waitForState(list, "closed");
      await list.evaluate(
        'dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }))',
      );
      await waitForState(list, "open");
      await list.locator("#presence-notice", {
        hasText: "now signed in as \u2068bob\u2069, not as \u2068ada\u2069",
      })
        .waitFor();
    },
  );

  await step(
    t,
    "a password change in one tab keeps the others signed in, and the user online throughout",
    async () => {
      await using server = await start({ presenceGraceMs: RENEWAL_GRACE_MS });
      await using adaContext = await newContext(browser);
      await using bobContext = await newContext(browser);
      await using carolContext = await newContext(browser);
      await signUp(adaContext, server, "ada");
      await signUp(bobContext, server, "bob");
      await signUp(carolContext, server, "carol");
      const bob = await logIn(bobContext, server, "bob");
      const carol = await logIn(carolContext, server, "carol");
      const firstTab = await logIn(adaContext, server, "ada");
      const secondTab = await openList(await openPage(adaContext, server.httpUrl("/")));
      await waitForStatus(secondTab, "bob", "Online");
      await waitForStatus(bob, "ada", "Online");
      const adaOnBobsPage = await watchForLeave(bob, "ada");
      const secondTabLabel = await watchConnection(secondTab);

      await changePassword(firstTab, server, "Another-zebra-42?");
      // The second tab's socket had the old session id: it is closed and opens again under the
      // new one, which the browser's cookie now names.
      await secondTabLabel.settled();
      const shown = await secondTabLabel.shown();
      assertEquals(shown.filter((label) => !/^(open|connecting|reconnecting):/.test(label)), []);
      await waitForStatus(secondTab, "ada", "Online");
      await waitForStatus(secondTab, "bob", "Online");
      await sentinel(server, bob, "dave");
      assertEquals(await adaOnBobsPage.leaves(), 0, "bob saw ada leave during her password change");

      // The second tab alone keeps ada online: once the first tab's grace is over, as carol's
      // (whose tab closes after it) is, ada is still there.
      const before = server.app.live.size;
      await firstTab.close();
      await waitForLiveSockets(server, before - 1);
      await carol.close();
      await user(bob, "carol").filter({ hasText: "Offline" })
        .waitFor({ timeout: RENEWAL_GRACE_MS + CHANGE_MS });
      assertEquals(await user(bob, "ada").getAttribute("data-online"), "true");
      assertEquals(await adaOnBobsPage.leaves(), 0, "bob saw ada leave after her first tab closed");
      assertEquals(await user(secondTab, "ada").getAttribute("data-online"), "true");
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
