import { assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
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

browserTest("the chat page survives its server going away", async (t, browser) => {
  await step(
    t,
    "the page reconnects after the server restarts, without losing or repeating",
    async () => {
      const dataDir = await Deno.makeTempDir({ prefix: "channels-browser-" });
      await using _cleanup = {
        [Symbol.asyncDispose]: () => Deno.remove(dataDir, { recursive: true }),
      };
      await using first = await startTestServer({ dataDir });
      await using context = await newContext(browser);
      const roomUrl = (server: { httpUrl(path: string): string }) =>
        server.httpUrl("/chat/restart/");
      const page = await openRoom(context, roomUrl(first));
      await sendMessage(page, "before the restart");
      await waitForMessage(page, "before the restart");

      await first.shutdown();
      await waitForState(page, "reconnecting", "closed");
      // Typed while offline: kept in the box, announced, and sent once the page is back.
      await sendMessage(page, "typed while offline");
      await page.locator("#chat-notice", { hasText: "Not connected" }).waitFor();
      assertEquals(await page.inputValue("#chat-message-input"), "typed while offline");

      await using second = await startTestServer({ dataDir, port: first.port });
      await waitForState(page, "open");
      await waitForMessage(page, "typed while offline");
      assertEquals(await page.inputValue("#chat-message-input"), "");

      await using otherContext = await newContext(browser);
      const other = await openRoom(otherContext, roomUrl(second));
      await sendMessage(page, "after the restart");
      await waitForMessage(other, "after the restart");
      await waitForMessage(page, "after the restart");
      const expected = ["before the restart", "typed while offline", "after the restart"];
      assertEquals(await messageTexts(page), expected);
      assertEquals(await messageTexts(other), expected);
    },
  );

  await step(t, "a close with a reason is explained, and the page connects again", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openRoom(context, server.httpUrl("/chat/limits/"));
    await sendMessage(page, "kept");
    await waitForMessage(page, "kept");
    // Over the 64 KiB frame limit: the server closes with 1009 and says why.
    await liftLengthLimit(page);
    await sendMessage(page, "x".repeat(70_000));
    await page.locator("#chat-notice", { hasText: "closed the connection: Message too big" })
      .waitFor();
    await waitForState(page, "open");
    await sendMessage(page, "still here");
    await waitForMessage(page, "still here");
    assertEquals(await messageTexts(page), ["kept", "still here"]);
  });
});

browserTest(
  "a page whose scripts cannot load says so, not 'Connecting…' for good",
  async (_t, browser) => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await context.newPage();
    // As a process of the previous version answers, mid-deploy, for a file it does not have.
    await page.route("**/channels/send_error.js", (route) => route.fulfill({ status: 404 }));
    await page.goto(server.httpUrl("/chat/lobby/"));
    await page.locator("#scripts-failed[role=alert]", { hasText: "Reload it" }).waitFor();
    // A page whose scripts load says nothing of the kind.
    const whole = await context.newPage();
    await whole.goto(server.httpUrl("/chat/lobby/"));
    await waitForState(whole, "open");
    assertEquals(await whole.locator("#scripts-failed").count(), 0);
  },
);
