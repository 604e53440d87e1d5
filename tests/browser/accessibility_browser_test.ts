/**
 * What WCAG 2.2 AA asks of the site's own pages, measured in Chromium: text contrast (1.4.3) and
 * fields' edges (1.4.11) in the light and the dark scheme, reflow at 320 px (1.4.10), an
 * invalid field that says so (3.3.1), and right-to-left text laid out as such.
 */
import { assert, assertEquals } from "@std/assert";
import type { BrowserContext, Page } from "playwright-core";
import { startTestServer } from "../_support/server.ts";
import {
  browserTest,
  newContext,
  openPage,
  openRoom,
  sendMessage,
  step,
  submitLogIn,
  waitForMessage,
  waitForState,
} from "./_browser.ts";
import { startTcpProxy } from "../_support/tcp_proxy.ts";

const PASSWORD = "quiet river stone";

// Runs in the page before its scripts: records the text of every node added where a screen
// reader would read it out (inside a live region whose `aria-live` is not "off" then).
const RECORD_ANNOUNCEMENTS = `(() => {
  globalThis.announced = [];
  globalThis.states = []; // every text the connection label showed, read out or not
  const liveness = (node) => {
    for (let e = node.parentElement; e; e = e.parentElement) {
      const live = e.getAttribute("aria-live");
      if (live !== null) return live;
      if (["log", "status", "alert"].includes(e.getAttribute("role"))) return "polite";
    }
    return "off";
  };
  new MutationObserver((records) => {
    for (const record of records) {
      const label = document.getElementById("connection-state");
      if (label && label.contains(record.target)) globalThis.states.push(label.textContent);
      const live = record.type === "characterData" ? liveness(record.target) : null;
      if (live !== null && live !== "off") globalThis.announced.push(record.target.textContent);
      for (const node of record.addedNodes) {
        if (liveness(node) !== "off") globalThis.announced.push(node.textContent);
      }
    }
  }).observe(document, { childList: true, subtree: true, characterData: true });
})()`;

async function announced(page: Page): Promise<string[]> {
  return await page.evaluate("globalThis.announced") as string[];
}

/**
 * A page that joins the room at `url` once `history` was said there, recording from its start
 * what a screen reader would be told (`announced`).
 */
async function joinAfterHistory(
  context: BrowserContext,
  url: string,
  history: string[],
): Promise<Page> {
  const first = await openRoom(context, url);
  for (const text of history) {
    await sendMessage(first, text);
    await waitForMessage(first, text);
  }
  await first.close();
  const page = await context.newPage();
  await page.addInitScript({ content: RECORD_ANNOUNCEMENTS });
  await page.goto(url);
  await waitForState(page, "open");
  await waitForMessage(page, history.at(-1)!);
  return page;
}

// Runs in the page: every visible text's contrast with what is behind it, and every text
// field's edge against the page, as WCAG computes them.
const MEASURE = `(() => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  const behind = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] === 1) return c;
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor);
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    if (!node.textContent.trim() || element.closest("[hidden], noscript, .visually-hidden")) continue;
    if (element.getBoundingClientRect().width === 0) continue;
    const style = getComputedStyle(element);
    const large = parseFloat(style.fontSize) >= 24 ||
      (Number(style.fontWeight) >= 700 && parseFloat(style.fontSize) >= 18.66);
    const r = ratio(parse(style.color), behind(element));
    if (r < (large ? 3 : 4.5)) low.push(r.toFixed(2) + ": " + node.textContent.trim().slice(0, 40));
  }
  for (const field of document.querySelectorAll("input[type=text], input[type=password]")) {
    const r = ratio(parse(getComputedStyle(field).borderTopColor), behind(field.parentElement));
    if (r < 3) low.push(r.toFixed(2) + ": the edge of #" + field.id);
  }
  return low;
})()`;

async function lowContrast(page: Page): Promise<string[]> {
  // Its stylesheet applied: a page just navigated to (a form's answer) can show its elements
  // before, and unstyled text on no background measures as black on black.
  await page.waitForLoadState("load");
  const found: string[] = [];
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const low of await page.evaluate(MEASURE) as string[]) found.push(`${scheme} ${low}`);
  }
  return found;
}

browserTest("accessibility of the site's pages", async (t, browser) => {
  await step(t, "text and fields keep their contrast in both schemes, errors too", async () => {
    await using server = await startTestServer();
    await server.app.services.users.create("ada", PASSWORD);
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/sign_up/"));
    await page.getByLabel("Username").fill("ada"); // taken: an error under the field
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Password confirmation").fill("another one");
    await page.getByLabel("Password confirmation").press("Enter");
    await page.locator(".form-errors").first().waitFor();
    const low = await lowContrast(page);
    await page.goto(server.httpUrl("/log_in/"));
    await page.getByLabel("Username").fill("ada");
    await page.getByLabel("Password").fill("wrong password");
    await page.getByLabel("Password").press("Enter");
    await page.getByText("Please enter a correct username and password.").waitFor();
    low.push(...await lowContrast(page));
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByLabel("Password").press("Enter");
    await page.waitForURL(server.httpUrl("/"));
    await page.locator(".presence-status").first().waitFor(); // the green "Online"
    low.push(...await lowContrast(page));
    await page.goto(server.httpUrl("/chat/"));
    low.push(...await lowContrast(page));
    assertEquals(low, []);
  });

  await step(t, "a new token and the longest username fit a 320 px screen", async () => {
    await using server = await startTestServer();
    const name = "x".repeat(150);
    await server.app.services.users.create(name, PASSWORD);
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/log_in/?next=/account/tokens/"));
    await page.setViewportSize({ width: 320, height: 640 });
    await submitLogIn(page, name, PASSWORD, server.httpUrl("/account/tokens/"));
    await page.getByRole("button", { name: "Create a token" }).click();
    await page.locator("#new-token").waitFor();
    const width = await page.evaluate("document.documentElement.scrollWidth") as number;
    assert(width <= 320, `the tokens page is ${width} px wide`);
  });

  await step(t, "the room picker marks its field invalid while its hint says why", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/chat/"));
    const field = page.getByLabel("Room name");
    await field.fill("   ");
    await field.press("Enter");
    await page.getByText("Type the name of a room first.").waitFor();
    assertEquals(await field.getAttribute("aria-invalid"), "true");
    assertEquals(await field.getAttribute("aria-describedby"), "room-name-hint");
    await field.fill("lobby");
    assertEquals(await field.getAttribute("aria-invalid"), null);
  });

  await step(t, "a Hebrew message and room name read right to left", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openRoom(context, server.httpUrl(`/chat/${encodeURIComponent("חדר")}/`));
    await sendMessage(page, "שלום לכולם!", "enter");
    await waitForMessage(page, "שלום לכולם!");
    // In the page: the computed direction of the last element matching `selector`.
    const direction = (selector: string) =>
      page.evaluate(
        `getComputedStyle([...document.querySelectorAll(${JSON.stringify(selector)})].at(-1))` +
          ".direction",
      ) as Promise<string>;
    assertEquals(await direction(".chat-text"), "rtl");
    assertEquals(await direction(".room-title"), "rtl");
    await sendMessage(page, "hello", "enter");
    await waitForMessage(page, "hello");
    assertEquals(await direction(".chat-text"), "ltr");
  });

  await step(
    t,
    "a Hebrew name in the presence feed keeps the English sentence around it",
    async () => {
      await using server = await startTestServer();
      await server.app.services.users.create("דוד", PASSWORD);
      await using context = await newContext(browser);
      const page = await openPage(context, server.httpUrl("/log_in/"));
      await submitLogIn(page, "דוד", PASSWORD, server.httpUrl("/"));
      const line = page.locator("#presence-feed .presence-event-text", { hasText: "connected" });
      await line.first().waitFor();
      const directions = await page.evaluate(`(() => {
      const line = document.querySelector("#presence-feed .presence-event-text");
      return [getComputedStyle(line).direction, getComputedStyle(line.firstElementChild).direction];
    })()`);
      assertEquals(directions, ["ltr", "rtl"], "the sentence, then the name");
    },
  );

  await step(
    t,
    "a screen reader hears a room's new messages, not its history, and a reconnect repeats nothing",
    async () => {
      await using server = await startTestServer();
      await using proxy = startTcpProxy(server.port);
      await using context = await newContext(browser);
      const page = await joinAfterHistory(context, proxy.httpUrl("/chat/heard/"), [
        "old one",
        "old two",
      ]);
      await sendMessage(page, "a new one");
      await waitForMessage(page, "a new one");
      const heard = await announced(page);
      assert(!heard.some((text) => text.includes("old")), `history read out: ${heard}`);
      assert(heard.some((text) => text.includes("a new one")), `not read out: ${heard}`);
      // Cut off, then back: "lost" once, however many retries; nothing shown is read again.
      const before = heard.length;
      proxy.cut();
      await waitForState(page, "reconnecting");
      // Two retries have failed: the label has said "Connection lost…", "Reconnecting…" and
      // "Connection lost…" again.
      const deadline = Date.now() + 15_000;
      const lost = async () =>
        (await page.evaluate("globalThis.states") as string[])
          .filter((text) => text.startsWith("Connection lost")).length;
      while (await lost() < 2) {
        assert(Date.now() < deadline, "the page did not retry twice in 15 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      proxy.restore();
      await waitForState(page, "open");
      const after = (await announced(page)).slice(before);
      assertEquals(
        after.filter((text) => /Reconnecting/.test(text)).length,
        1,
        `the outage read out as: ${JSON.stringify(after)}`,
      );
      assert(!after.some((text) => /old|a new one/.test(text)), JSON.stringify(after));
    },
  );

  await step(
    t,
    "entering a room reads out none of those already there; one who comes after is",
    async () => {
      await using server = await startTestServer();
      const room = server.httpUrl("/chat/members-heard/");
      const pages: Page[] = [];
      for (const name of ["ada", "bob", "cy"]) {
        await server.app.services.users.create(name, PASSWORD);
        const context = await newContext(browser);
        const login = await openPage(context, server.httpUrl(`/log_in/`));
        await submitLogIn(login, name, PASSWORD, server.httpUrl("/"));
        if (name === "cy") await login.addInitScript({ content: RECORD_ANNOUNCEMENTS });
        await login.goto(room);
        await waitForState(login, "open");
        pages.push(login);
      }
      const cy = pages[2];
      for (const name of ["ada", "bob", "cy"]) {
        await cy.locator(`#room-members li[data-username=${name}]`).waitFor();
      }
      await server.app.services.users.create("dee", PASSWORD);
      const deeContext = await newContext(browser);
      const dee = await openPage(deeContext, server.httpUrl(`/log_in/`));
      await submitLogIn(dee, "dee", PASSWORD, server.httpUrl("/"));
      await dee.goto(room);
      await cy.locator("#room-members li[data-username=dee]").waitFor();
      const heard = await announced(cy);
      assert(!heard.some((text) => /ada|bob|cy/.test(text)), `members read out: ${heard}`);
      assert(heard.some((text) => text.includes("dee")), `the newcomer not read out: ${heard}`);
      for (const page of [...pages, dee]) await page.context().close();
    },
  );

  await step(
    t,
    "a send the connection lost is read out, even right after the history",
    async () => {
      await using server = await startTestServer();
      await using proxy = startTcpProxy(server.port);
      await using context = await newContext(browser);
      const page = await joinAfterHistory(context, proxy.httpUrl("/chat/quiet/"), ["old one"]);
      proxy.hold(); // the send goes nowhere, and no answer comes
      await sendMessage(page, "typed into the void");
      proxy.cut();
      await page.locator("#chat-log .chat-not-sent").waitFor();
      proxy.restore();
      await page.locator("#chat-log .chat-not-sent[data-state=not-sent]").waitFor();
      const heard = await announced(page);
      assert(heard.some((text) => text.startsWith("Not confirmed")), JSON.stringify(heard));
      assert(heard.some((text) => text.startsWith("Not sent")), JSON.stringify(heard));
    },
  );

  await step(
    t,
    "the activity feed stays a list in its log; each admin table is one named region",
    async () => {
      await using server = await startTestServer();
      await server.app.services.users.create("ada", PASSWORD, { staff: true });
      await using context = await newContext(browser);
      const page = await openPage(context, server.httpUrl("/log_in/?next=/admin/"));
      await submitLogIn(page, "ada", PASSWORD, server.httpUrl("/admin/"));
      for (const name of ["Processes", "Connections by route", "Largest groups"]) {
        assertEquals(await page.getByRole("region", { name, exact: true }).count(), 1, name);
      }
      await page.goto(server.httpUrl("/"));
      const log = page.getByRole("log", { name: "Recent activity" });
      await log.getByRole("listitem").first().waitFor(); // ada's own arrival
      assertEquals(await log.getByRole("list").count(), 1);
    },
  );

  await step(t, "a form sent back with an error puts the focus where the error is", async () => {
    await using server = await startTestServer();
    await server.app.services.users.create("ada", PASSWORD);
    await using context = await newContext(browser);
    const signUp = await openPage(context, server.httpUrl("/sign_up/"));
    await signUp.getByLabel("Username").fill("grace");
    await signUp.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await signUp.getByLabel("Password confirmation").fill("another one");
    await signUp.getByLabel("Password confirmation").press("Enter");
    await signUp.locator("#id_password2_errors").waitFor();
    // The errors are in the page as it parses; `autofocus` moves the focus at a later frame.
    await signUp.waitForFunction("document.activeElement?.id === 'id_password2'").catch(() => {});
    assertEquals(await signUp.evaluate("document.activeElement.id"), "id_password2");
    const logIn = await openPage(context, server.httpUrl("/log_in/"));
    await logIn.getByLabel("Username").fill("ada");
    await logIn.getByLabel("Password").fill("not it at all");
    await logIn.getByLabel("Password").press("Enter");
    await logIn.locator(".form-errors[role=alert]").waitFor();
    await logIn.waitForFunction("document.activeElement?.id === 'id_username'").catch(() => {});
    // The focused field names the form's error, so a screen reader says why it is back.
    const focused = await logIn.evaluate(`(() => {
      const field = document.activeElement;
      const ids = (field.getAttribute("aria-describedby") ?? "").split(" ");
      return [field.id, field.getAttribute("aria-invalid"),
        ids.map((id) => document.getElementById(id)?.textContent ?? "").join(" ")];
    })()`) as string[];
    assertEquals(focused.slice(0, 2), ["id_username", "true"]);
    assert(/[Pp]lease enter a correct username and password/.test(focused[2]), focused[2]);
  });

  await step(t, "the admin page's figures never break inside at 320 px", async () => {
    await using server = await startTestServer();
    await server.app.services.users.create("ada", PASSWORD, { staff: true });
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/log_in/?next=/admin/"));
    await page.setViewportSize({ width: 320, height: 640 });
    await submitLogIn(page, "ada", PASSWORD, server.httpUrl("/admin/"));
    await page.locator("table td").first().waitFor();
    // A cell whose text is one word, laid out on more than one line, broke inside a word.
    const broken = await page.evaluate(`[...document.querySelectorAll("th, td")]
      .filter((cell) => /^\\S+$/.test(cell.textContent.trim()))
      .filter((cell) => {
        const range = document.createRange();
        range.selectNodeContents(cell);
        return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size > 1;
      })
      .map((cell) => cell.textContent.trim())`);
    assertEquals(broken, []);
    // The wide tables scroll inside their own box: the page does not scroll sideways.
    const width = await page.evaluate("document.documentElement.scrollWidth") as number;
    assert(width <= 320, `the admin page is ${width} px wide`);
  });
});
