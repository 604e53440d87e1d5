/**
 * Browser tests: one Chromium per test file, a fresh context per step, and helpers that wait
 * for what a user would see. Without Chromium the tests are skipped with a reason, except
 * under `CI=true`, where they fail: nothing is skipped in CI.
 *
 * @example
 * ```ts
 * browserTest("chat in the browser", async (t, browser) => {
 *   await step(t, "a message shows up", async () => {
 *     await using context = await newContext(browser);
 *     const page = await openRoom(context, server.httpUrl("/chat/lobby/"));
 *   });
 * });
 * ```
 */
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Locator,
  type Page,
} from "playwright-core";

/** Where the Debian package puts Chromium. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
/** How long a step waits for something it expects to see. */
export const WAIT_MS = 10_000;

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function chromiumMissing(): string | null {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile ? null : `${CHROMIUM_PATH} is not a file`;
  } catch {
    return `Chromium not found at ${CHROMIUM_PATH}`;
  }
}

/**
 * A test with one browser for all its steps. Playwright keeps timers and pipes of its own
 * between calls, so the op and resource sanitizers are off for browser tests.
 */
export function browserTest(
  name: string,
  fn: (t: Deno.TestContext, browser: Browser) => Promise<void>,
): void {
  const missing = chromiumMissing();
  const inCi = Deno.env.get("CI") === "true";
  if (missing !== null && !inCi) console.warn(`Skipping "${name}": ${missing}`);
  Deno.test({
    name,
    ignore: missing !== null && !inCi,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      if (missing !== null) throw new Error(`${missing} (CI=true: browser tests must run)`);
      const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS });
      try {
        await fn(t, browser);
      } finally {
        await browser.close();
      }
    },
  });
}

/** A step of a browser test, with the sanitizers off like its test. */
export async function step(
  t: Deno.TestContext,
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  await t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/** A fresh browser context (its own cookies and storage); `await using` closes it. */
export async function newContext(
  browser: Browser,
): Promise<BrowserContext & AsyncDisposable> {
  const context = await browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
  const errors: string[] = [];
  context.on("weberror", (error) => errors.push(String(error.error())));
  return Object.assign(context, {
    async [Symbol.asyncDispose]() {
      await context.close();
      if (errors.length > 0) throw new Error(`The page threw: ${errors.join("; ")}`);
    },
  });
}

/** Opens `url` in a new page of `context`. */
export async function openPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

// Run in every page of a context before its scripts: the WebSockets they open are kept, so that
// a test can end them as a lost connection would, the server going on as it was.
const KEEP_SOCKETS = `{
  const Original = globalThis.WebSocket;
  globalThis.__keptSockets = [];
  globalThis.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      globalThis.__keptSockets.push(this);
    }
  };
}`;

/** Keeps the WebSockets the pages of `context` open from now on, for `dropSockets`. */
export async function keepSockets(context: BrowserContext): Promise<void> {
  await context.addInitScript({ content: KEEP_SOCKETS });
}

/**
 * Closes every WebSocket `page` has open (kept by `keepSockets`), from the page's end and
 * without its own code asking: its client reconnects, as after a lost connection.
 */
export async function dropSockets(page: Page): Promise<void> {
  await page.evaluate(() => {
    const kept = (globalThis as { __keptSockets?: WebSocket[] }).__keptSockets ?? [];
    for (const socket of kept) if (socket.readyState <= WebSocket.OPEN) socket.close();
  });
}

/**
 * What a `LiveSocket` the page opens at `path` says once it says "closed" (an app's script would
 * show it), with `options` given to it (a `backoff`). Bounded: a socket that never says "closed"
 * within `WAIT_MS` fails with the states it went through.
 */
export function closedText(
  page: Page,
  path: string,
  options: Record<string, unknown> = {},
): Promise<string> {
  return page.evaluate(async ({ path, waitMs, options }) => {
    const { LiveSocket } = await import("/channels/live_socket.js");
    const seen: string[] = [];
    return await new Promise<string>((resolve, reject) => {
      const live = new LiveSocket(path, {
        ...options,
        onState: (state: string, text: string) => {
          seen.push(`${state}: ${text}`);
          if (state === "closed") resolve(text);
        },
      });
      setTimeout(() => {
        live.stop();
        reject(new Error(`not closed within ${waitMs} ms: ${seen.join(" | ")}`));
      }, waitMs);
      live.start();
    });
  }, { path, waitMs: WAIT_MS, options });
}

/**
 * Fills the log-in form `page` shows with `username` and `password`, submits it with Enter, as
 * a person does, and waits until the page is at `landing`.
 */
export async function submitLogIn(
  page: Page,
  username: string,
  password: string,
  landing: string,
): Promise<void> {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Password").press("Enter");
  await page.waitForURL(landing);
}

/** Opens `url` in a new page and waits until its chat socket is open. */
export async function openRoom(context: BrowserContext, url: string): Promise<Page> {
  const page = await openPage(context, url);
  await waitForState(page, "open");
  return page;
}

/** Waits until the page's connection state is one of `states`. */
export async function waitForState(
  page: Page,
  ...states: ("connecting" | "open" | "reconnecting" | "closed")[]
): Promise<void> {
  const selector = states.map((state) => `#connection-state[data-state="${state}"]`).join(", ");
  await page.waitForSelector(selector, { timeout: WAIT_MS * 3 });
}

/** Types `text` into the message input and sends it with Enter or with the button. */
export async function sendMessage(
  page: Page,
  text: string,
  via: "enter" | "button" = "enter",
): Promise<void> {
  const input = page.locator("#chat-message-input");
  await input.fill(text);
  if (via === "enter") await input.press("Enter");
  else await page.click("#chat-message-submit");
}

/**
 * Lifts the input's `maxlength`, as an old or hand-written client would not have it, so a test
 * can send what the server must refuse.
 */
export async function liftLengthLimit(page: Page): Promise<void> {
  await page.evaluate(`document.getElementById("chat-message-input").removeAttribute("maxlength")`);
}

/** Waits until the log shows a message with exactly `text`. */
export async function waitForMessage(page: Page, text: string): Promise<void> {
  await messageLocator(page, text).first().waitFor();
}

/** How many times the log shows a message with exactly `text`. */
export async function countMessages(page: Page, text: string): Promise<number> {
  return await messageLocator(page, text).count();
}

function messageLocator(page: Page, text: string): Locator {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  return page.locator("#chat-log .chat-text").filter({ hasText: exact });
}

/** The texts of the messages in the log, top to bottom. */
export async function messageTexts(page: Page): Promise<string[]> {
  return await page.locator("#chat-log .chat-text").allTextContents();
}
