import { assertEquals, assertStringIncludes } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import type { BrowserContext, Page } from "playwright-core";
import { TestSocket } from "../_support/socket.ts";
import {
  browserTest,
  countMessages,
  newContext,
  openPage,
  sendMessage,
  step,
  submitLogIn,
  waitForMessage,
  waitForState,
} from "./_browser.ts";

const PASSWORD = "quiet river stone";

/**
 * Sends `text` from `chat` with the cut armed (its echo comes, then the connection dies before
 * its ack): once the page is back and shows a message sent after, it shows `text` once, and
 * marks nothing as not sent (it was stored).
 */
async function sendThroughCut(
  chat: Page,
  server: TestServer,
  cut: { armed: boolean },
  text: string,
): Promise<void> {
  cut.armed = true;
  await sendMessage(chat, text, "enter");
  await waitForMessage(chat, text);
  await waitForState(chat, "open"); // back, and recovered
  const other = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
  other.sendJson({ message: "after the return" });
  await waitForMessage(chat, "after the return");
  assertEquals(await chat.locator("#chat-log .chat-not-sent").count(), 0);
  assertEquals(await countMessages(chat, text), 1);
  await other.close();
}

/** Logs the browser of `context` in as `username` with no page: as a form another tab posts. */
async function logInBy(context: BrowserContext, server: TestServer, username: string) {
  const form = await context.request.get(server.httpUrl("/log_in/"));
  const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(await form.text())![1];
  const answer = await context.request.post(server.httpUrl("/log_in/"), {
    form: { csrfmiddlewaretoken: token, username, password: PASSWORD },
    headers: { origin: server.httpUrl("").replace(/\/$/, "") },
    maxRedirects: 0,
  });
  assertEquals(answer.status(), 302, `the log-in of ${username}`);
}

/**
 * Passes `page`'s chat sockets through; once `armed`, the next server message with an ack goes
 * to the page without it, and the connection is closed: the message was stored, its answer lost.
 */
async function cutAfterEcho(page: Page): Promise<{ armed: boolean; holdNext: boolean }> {
  // `holdNext`: the next connection's frames wait until the page sent one (see the step).
  const cut = { armed: false, holdNext: false };
  await page.routeWebSocket(/\/ws\/chat\//, (ws) => {
    const server = ws.connectToServer();
    let held: (string | Buffer)[] | null = cut.holdNext ? [] : null;
    cut.holdNext = false;
    ws.onMessage((message) => {
      server.send(message);
      for (const frame of held ?? []) ws.send(frame);
      held = null;
    });
    server.onMessage((message) => {
      if (held !== null) return void held.push(message);
      if (!cut.armed || typeof message !== "string" || !message.includes('"ack"')) {
        return ws.send(message);
      }
      cut.armed = false;
      // The site's page takes several frames per message (`?batch=1`), one per line.
      const kept = message.split("\n").filter((line) => line !== "" && !line.includes('"ack"'));
      if (kept.length > 0) ws.send(kept.join("\n"));
      ws.close({ code: 1001, reason: "Going away" });
      server.close();
    });
  });
  return cut;
}

browserTest("accounts in the browser", async (t, browser) => {
  await step(t, "sign up, log in and log out, submitting the forms with Enter", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/sign_up/?next=/chat/lobby/"));
    await page.getByLabel("Username").fill("ada");
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Password confirmation").fill(PASSWORD);
    await page.getByLabel("Password confirmation").press("Enter");
    await page.waitForURL(/\/log_in\/\?next=/);

    await submitLogIn(page, "ada", PASSWORD, server.httpUrl("/chat/lobby/"));
    await waitForState(page, "open");
    assertEquals(
      (await page.locator(".site-nav .signed-in").textContent())?.trim(),
      "Signed in as ada",
    );
    await sendMessage(page, "Hello as ada", "enter");
    await waitForMessage(page, "Hello as ada");
    assertEquals(await page.locator("#chat-log .chat-author").last().textContent(), "ada");

    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(server.httpUrl("/log_in/"));
    await page.goto(server.httpUrl("/chat/"));
    await page.getByRole("link", { name: "Log in" }).waitFor();
    assertEquals(await page.getByRole("button", { name: "Log out" }).count(), 0);
  });

  await step(
    t,
    "the longest username wraps: no page scrolls sideways, Log out stays in view",
    async () => {
      await using server = await startTestServer();
      const name = "x".repeat(150); // the most a username may have, with no space to break at
      await server.app.services.users.create(name, PASSWORD);
      await using context = await newContext(browser);
      const page = await openPage(context, server.httpUrl("/log_in/?next=/chat/lobby/"));
      await page.setViewportSize({ width: 1024, height: 800 });
      await submitLogIn(page, name, PASSWORD, server.httpUrl("/chat/lobby/"));
      await waitForState(page, "open");
      await sendMessage(page, "Hello", "enter");
      await waitForMessage(page, "Hello");
      for (const path of ["/chat/lobby/", "/", "/chat/"]) {
        if (path !== "/chat/lobby/") await page.goto(server.httpUrl(path));
        const layout = await page.evaluate(`({
        page: document.documentElement.scrollWidth,
        viewport: innerWidth,
        logOut: document.querySelector(".site-nav button").getBoundingClientRect().right,
      })`) as { page: number; viewport: number; logOut: number };
        assertEquals(layout.page <= layout.viewport, true, `${path} scrolls sideways`);
        assertEquals(layout.logOut <= layout.viewport, true, `${path}: Log out is off-screen`);
      }
    },
  );

  await step(t, "a chat page whose session ended says so until it is reloaded", async () => {
    await using server = await startTestServer();
    await server.app.services.users.create("ada", PASSWORD);
    await using context = await newContext(browser);
    const login = await openPage(context, server.httpUrl("/log_in/"));
    await submitLogIn(login, "ada", PASSWORD, server.httpUrl("/"));
    const chat = await context.newPage();
    await chat.clock.install(); // the notice's own timer is run forward below
    await chat.goto(server.httpUrl("/chat/lobby/"));
    await waitForState(chat, "open");
    await login.getByRole("button", { name: "Log out" }).click(); // another tab of the browser
    const notice = chat.locator("#chat-notice");
    await notice.getByText("You were logged out").waitFor();
    await chat.clock.fastForward(60_000); // far past the 10 s a passing notice stays
    assertEquals(await notice.isVisible(), true, "the notice went away; the page still says ada");
    // Sending a message, which ends a passing notice, leaves this one.
    await waitForState(chat, "open");
    await sendMessage(chat, "Sent as whom?", "enter");
    await waitForMessage(chat, "Sent as whom?");
    assertEquals(await notice.isVisible(), true, "sending took the log-out notice away");
    assertStringIncludes((await notice.textContent()) ?? "", "You were logged out");
  });

  await step(
    t,
    "a chat page reconnects as whoever signs in in another tab, and says so",
    async () => {
      await using server = await startTestServer();
      for (const name of ["ada", "bob"]) await server.app.services.users.create(name, PASSWORD);
      await using context = await newContext(browser);
      const chat = await openPage(context, server.httpUrl("/chat/lobby/"));
      await waitForState(chat, "open");
      const notice = chat.locator("#chat-notice");
      const login = await openPage(context, server.httpUrl("/log_in/"));
      const signIn = async (name: string) => {
        await login.goto(server.httpUrl("/log_in/"));
        await submitLogIn(login, name, PASSWORD, server.httpUrl("/"));
      };

      // Opened anonymous: after the log-in, the page writes as ada, and says so.
      await signIn("ada");
      await notice.getByText(/now writes as .ada., not as .Anonymous./).waitFor();
      await sendMessage(chat, "Now as ada", "enter");
      await waitForMessage(chat, "Now as ada");
      assertEquals(await chat.locator("#chat-log .chat-author").last().textContent(), "ada");

      // Logged out, then in again as ada: the page is ada's again, and the log-out's notice goes.
      await chat.reload();
      await waitForState(chat, "open");
      await login.getByRole("button", { name: "Log out" }).click();
      await notice.getByText("You were logged out").waitFor();
      await waitForState(chat, "open"); // back as anonymous
      await signIn("ada");
      await notice.waitFor({ state: "hidden" });
      await sendMessage(chat, "Back as ada", "enter");
      await waitForMessage(chat, "Back as ada");
      assertEquals(await chat.locator("#chat-log .chat-author").last().textContent(), "ada");

      // Logged out, then in as bob: the page says it writes as bob now.
      await login.getByRole("button", { name: "Log out" }).click();
      await notice.getByText("You were logged out").waitFor();
      await waitForState(chat, "open");
      await signIn("bob");
      await notice.getByText(/now writes as .bob., not as .ada./).waitFor();
      await sendMessage(chat, "As bob", "enter");
      await waitForMessage(chat, "As bob");
      assertEquals(await chat.locator("#chat-log .chat-author").last().textContent(), "bob");
    },
  );

  await step(
    t,
    "a chat page signed in from another tab knows its messages under its new name, even one sent as it reconnected: stored, its ack lost, it is not marked unsent",
    async () => {
      for (const sentAs of ["after it was told", "before it was told whom it writes as"]) {
        await using server = await startTestServer();
        await server.app.services.users.create("ada", PASSWORD);
        await using context = await newContext(browser);
        const chat = await context.newPage();
        const cut = await cutAfterEcho(chat);
        await chat.goto(server.httpUrl("/chat/lobby/"));
        await waitForState(chat, "open");
        // Held: the reconnect's frames, "you" among them, wait for the page's send.
        cut.holdNext = sentAs !== "after it was told";
        await logInBy(context, server, "ada");
        if (cut.holdNext) {
          await waitForState(chat, "reconnecting");
          await waitForState(chat, "open");
        } else {
          await chat.locator("#chat-notice").getByText(/now writes as .ada./).waitFor();
        }
        await sendThroughCut(chat, server, cut, `sent ${sentAs}`);
      }
    },
  );

  await step(
    t,
    "a chat page signed in from another tab keeps its user online on the site",
    async () => {
      await using server = await startTestServer({ presenceGraceMs: 0 });
      for (const name of ["ada", "carol"]) await server.app.services.users.create(name, PASSWORD);
      await using carolContext = await newContext(browser);
      const list = await openPage(carolContext, server.httpUrl("/log_in/"));
      await submitLogIn(list, "carol", PASSWORD, server.httpUrl("/"));
      await waitForState(list, "open");
      await using context = await newContext(browser);
      const chat = await openPage(context, server.httpUrl("/chat/lobby/"));
      await waitForState(chat, "open");
      // Signed in with no page of ada's open but this one: only it can keep her online.
      await logInBy(context, server, "ada");
      await chat.locator("#chat-notice").getByText(/now writes as .ada./).waitFor();
      await list.locator('#presence-list li[data-username="ada"]', { hasText: "Online" }).waitFor();
    },
  );

  await step(t, "a wrong password keeps the typed username and empties the password", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/log_in/"));
    await page.getByLabel("Username").fill("nobody");
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("Please enter a correct username and password.").waitFor();
    assertEquals(await page.getByLabel("Username").inputValue(), "nobody");
    assertEquals(await page.getByLabel("Password").inputValue(), "");
  });
});
