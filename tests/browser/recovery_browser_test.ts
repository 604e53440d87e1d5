/**
 * Recovery in the browser: a chat page cut off while others chat shows every message exactly
 * once, in order, after it returns, whether it returns to the same process or another one.
 * More messages go by while it is away than the 50 a fresh page gets as history, so only a
 * real recovery (by offset) passes. The page reaches the server through a TCP proxy: cutting
 * the proxy cuts the page off as a lost network would, and the proxy may bring it back to
 * another process, as a load balancer does.
 */
import { assertEquals } from "@std/assert";
import type { Page } from "playwright-core";
import { startTestServer } from "../_support/server.ts";
import { startTcpProxy } from "../_support/tcp_proxy.ts";
import { TestSocket } from "../_support/socket.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { startServerProcess } from "../scale/_process.ts";
import {
  browserTest,
  liftLengthLimit,
  messageTexts,
  newContext,
  openRoom,
  sendMessage,
  step,
  waitForMessage,
  waitForState,
} from "./_browser.ts";

const WAIT = 15_000;
// Others chat faster than the default rate limit allows one socket.
const NO_RATE_LIMIT = { RATE_LIMIT: "10000", RATE_BURST: "10000" };

const redis = await redisAvailability();

/** Sends `texts` from `socket` in order and waits until `watcher` has seen the last one. */
async function chat(socket: TestSocket, watcher: TestSocket, texts: string[]): Promise<void> {
  for (const message of texts) socket.sendJson({ message });
  const last = texts.at(-1);
  await watcher.nextMatching((frame) => frame.message === last, WAIT);
}

const numbered = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}`);

/** Waits until the page shows `text`, then checks its whole log. */
async function expectLog(page: Page, expected: string[]): Promise<void> {
  await page.locator("#chat-log .chat-text").filter({ hasText: expected.at(-1)! }).first()
    .waitFor({ timeout: WAIT * 2 });
  assertEquals(await messageTexts(page), expected);
  const notice = page.locator("#chat-notice");
  if (await notice.isVisible()) {
    assertEquals((await notice.textContent())?.includes("could not be recovered"), false);
  }
}

browserTest(
  "the chat page recovers what it missed and marks what was not sent",
  async (t, browser) => {
    await step(
      t,
      "it returns to the same process and shows all it missed, once, in order",
      async () => {
        await using server = await startTestServer({
          rateLimit: { perSecond: 10_000, burst: 10_000 },
        });
        await using proxy = startTcpProxy(server.port);
        await using context = await newContext(browser);
        const page = await openRoom(context, proxy.httpUrl("/chat/away/"));
        const other = await TestSocket.open(server.wsUrl("/ws/chat/away/"));
        await sendMessage(page, "before the cut");
        await waitForMessage(page, "before the cut");

        proxy.cut();
        await waitForState(page, "reconnecting", "closed");
        const missed = numbered("while away", 70);
        await chat(other, other, missed);
        proxy.restore();
        await waitForState(page, "open");
        await expectLog(page, ["before the cut", ...missed]);

        // And it goes on live.
        other.sendJson({ message: "after the return" });
        await waitForMessage(page, "after the return");
        assertEquals((await messageTexts(page)).length, 72);
        await other.close();
      },
    );

    await step(t, "it returns to another process and still misses nothing", async () => {
      if (!redis.available) {
        console.warn(`Skipping the two-process step: ${redis.reason}`);
        return;
      }
      await using store = await testRedisUrl();
      const env = {
        ...NO_RATE_LIMIT,
        LAYER: "redis",
        REDIS_URL: store.url,
        REDIS_PREFIX: uniquePrefix("recovery"),
      };
      await using a = await startServerProcess(env);
      await using b = await startServerProcess(env);
      const portOf = (url: string) => Number(new URL(url).port);
      await using proxy = startTcpProxy(portOf(a.url));
      await using context = await newContext(browser);
      const page = await openRoom(context, proxy.httpUrl("/chat/elsewhere/"));
      const onA = await TestSocket.open(a.wsUrl("/ws/chat/elsewhere/"));
      const onB = await TestSocket.open(b.wsUrl("/ws/chat/elsewhere/"));
      onA.sendJson({ message: "before the cut" });
      await waitForMessage(page, "before the cut");

      proxy.cut();
      await waitForState(page, "reconnecting", "closed");
      const fromA = numbered("from A", 80);
      const fromB = numbered("from B", 10);
      // B sees A's last before B's first is sent: the room's order is A's 80, then B's 10.
      await chat(onA, onB, fromA);
      await chat(onB, onA, fromB);
      proxy.restore(portOf(b.url));
      await waitForState(page, "open");
      await expectLog(page, ["before the cut", ...fromA, ...fromB]);

      // The page now talks to B, and A's members hear it.
      await sendMessage(page, "back, via B");
      await onA.nextMatching((frame) => frame.message === "back, via B", WAIT);
      await onA.close();
      await onB.close();
    });

    await step(t, "away longer than the room keeps, it says so and shows the last 50", async () => {
      await using server = await startTestServer({
        rateLimit: { perSecond: 10_000, burst: 10_000 },
        historyWindow: { messages: 60, seconds: 0 },
      });
      await using proxy = startTcpProxy(server.port);
      await using context = await newContext(browser);
      const page = await openRoom(context, proxy.httpUrl("/chat/long-gone/"));
      const other = await TestSocket.open(server.wsUrl("/ws/chat/long-gone/"));
      await sendMessage(page, "before the cut");
      await waitForMessage(page, "before the cut");

      proxy.cut();
      await waitForState(page, "reconnecting", "closed");
      const missed = numbered("while away", 200);
      await chat(other, other, missed);
      proxy.restore();
      await page.locator("#chat-notice", { hasText: "Some messages could not be recovered" })
        .waitFor({ timeout: WAIT * 2 });
      await waitForMessage(page, missed.at(-1)!);
      assertEquals(await messageTexts(page), ["before the cut", ...missed.slice(-50)]);
      await other.close();
    });

    await step(
      t,
      "a message the dying connection lost is marked not sent once the recovery shows it never was stored, and can be sent again",
      async () => {
        await using server = await startTestServer();
        await using proxy = startTcpProxy(server.port);
        await using context = await newContext(browser);
        const page = await openRoom(context, proxy.httpUrl("/chat/void/"));
        const other = await TestSocket.open(server.wsUrl("/ws/chat/void/"));
        await sendMessage(page, "before the silence");
        await waitForMessage(page, "before the silence");
        proxy.hold(); // the network stops delivering, without a word
        await sendMessage(page, "typed into the void");
        other.sendJson({ message: "said meanwhile" });
        proxy.cut(); // and then the connection dies
        const lost = page.locator("#chat-log .chat-not-sent");
        await lost.waitFor({ timeout: WAIT });
        proxy.restore();
        await waitForMessage(page, "said meanwhile");
        // The replay is complete and has no "typed into the void": it was never stored.
        await page.locator("#chat-log .chat-not-sent[data-state=not-sent]").waitFor({
          timeout: WAIT,
        });
        assertEquals(
          await lost.locator(".chat-not-sent-reason").textContent(),
          "Not sent: the connection was lost before the server got it.",
        );
        await lost.locator("button.chat-send-again").click();
        await waitForMessage(page, "typed into the void");
        assertEquals(await lost.count(), 0);
        assertEquals(await messageTexts(page), [
          "before the silence",
          "said meanwhile",
          "typed into the void",
        ]);
        await other.close();
      },
    );

    await step(
      t,
      "a message typed into a connection gone silent (no close ever comes) is found lost, and can be sent again",
      async () => {
        await using server = await startTestServer();
        await using proxy = startTcpProxy(server.port);
        await using context = await newContext(browser);
        const page = await openRoom(context, proxy.httpUrl("/chat/silent/"));
        await sendMessage(page, "before the silence");
        await waitForMessage(page, "before the silence");
        proxy.hold(); // the network stops delivering, without a word, and stays so
        await sendMessage(page, "typed into the silence");
        // The page finds out itself: no ack in 10 s, then no answer to its ping in 10 s more.
        const lost = page.locator("#chat-log .chat-not-sent");
        await lost.locator(".chat-not-sent-reason", { hasText: "the connection was lost" })
          .waitFor({ timeout: 40_000 });
        proxy.cut();
        proxy.restore();
        await page.locator("#chat-log .chat-not-sent[data-state=not-sent]").waitFor({
          timeout: WAIT,
        });
        await lost.locator("button.chat-send-again").click();
        await waitForMessage(page, "typed into the silence");
        assertEquals(await messageTexts(page), ["before the silence", "typed into the silence"]);
      },
    );

    await step(t, "a message the server refuses stays in the log marked not sent", async () => {
      await using server = await startTestServer();
      await using context = await newContext(browser);
      const page = await openRoom(context, server.httpUrl("/chat/refused/"));
      await liftLengthLimit(page);
      await sendMessage(page, "y".repeat(10_001));
      const refused = page.locator("#chat-log .chat-not-sent");
      await refused.waitFor();
      assertEquals(await refused.getAttribute("data-state"), "not-sent");
      assertEquals(
        await refused.locator(".chat-not-sent-reason").textContent(),
        "Not sent: Message is too long: at most 10000 characters",
      );
      assertEquals(await refused.locator(".chat-unsent-text").textContent(), "y".repeat(10_001));
      await sendMessage(page, "this one is fine");
      await waitForMessage(page, "this one is fine");
      assertEquals(await messageTexts(page), ["this one is fine"]);
    });
  },
);
