import { assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import {
  browserTest,
  countMessages,
  liftLengthLimit,
  messageTexts,
  newContext,
  openPage,
  openRoom,
  sendMessage,
  step,
  waitForMessage,
  waitForState,
} from "./_browser.ts";

browserTest("chat rooms in the browser", async (t, browser) => {
  await step(t, "two pages in one room both see a message typed in one of them", async () => {
    await using server = await startTestServer();
    await using aliceContext = await newContext(browser);
    await using bobContext = await newContext(browser);
    const alice = await openRoom(aliceContext, server.httpUrl("/chat/lobby/"));
    const bob = await openRoom(bobContext, server.httpUrl("/chat/lobby/"));

    await sendMessage(alice, "Hello from Alice", "enter");
    await waitForMessage(bob, "Hello from Alice");
    await waitForMessage(alice, "Hello from Alice");
    assertEquals(await alice.inputValue("#chat-message-input"), "");

    await sendMessage(bob, "Hi Alice, Bob here", "button");
    await waitForMessage(alice, "Hi Alice, Bob here");
    await waitForMessage(bob, "Hi Alice, Bob here");
    assertEquals(await messageTexts(alice), ["Hello from Alice", "Hi Alice, Bob here"]);
    assertEquals(await messageTexts(bob), ["Hello from Alice", "Hi Alice, Bob here"]);
    assertEquals(await alice.locator("#chat-log .chat-author").first().textContent(), "Anonymous");
  });

  await step(t, "a page in another room does not see the message", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const lobby = await openRoom(context, server.httpUrl("/chat/lobby/"));
    const kitchen = await openRoom(context, server.httpUrl("/chat/kitchen/"));

    await sendMessage(lobby, "only for the lobby");
    await waitForMessage(lobby, "only for the lobby");
    // The kitchen's own later message arrives after anything sent before it would have.
    await sendMessage(kitchen, "meanwhile in the kitchen");
    await waitForMessage(kitchen, "meanwhile in the kitchen");
    assertEquals(await messageTexts(kitchen), ["meanwhile in the kitchen"]);
    assertEquals(await messageTexts(lobby), ["only for the lobby"]);
  });

  await step(t, "history is shown once after a reload", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openRoom(context, server.httpUrl("/chat/history/"));
    await sendMessage(page, "first");
    await waitForMessage(page, "first");
    await sendMessage(page, "second");
    await waitForMessage(page, "second");

    await page.reload();
    await waitForState(page, "open");
    // History comes before live messages on a socket: once "third" is shown, all of it is.
    await sendMessage(page, "third");
    await waitForMessage(page, "third");
    assertEquals(await messageTexts(page), ["first", "second", "third"]);
  });

  await step(t, "Unicode room names work from the picker to the messages", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    await using otherContext = await newContext(browser);
    for (const room of ["café au lait", "東京"]) {
      const page = await openPage(context, server.httpUrl("/chat/"));
      // No click: the room input takes the focus by itself (autofocus) and gets the keys.
      await page.locator("#room-name-input:focus").waitFor();
      await page.keyboard.type(room);
      await page.keyboard.press("Enter");
      const roomUrl = server.httpUrl(`/chat/${encodeURIComponent(room)}/`);
      await page.waitForURL(roomUrl);
      await waitForState(page, "open");
      assertEquals(await page.locator("h1").textContent(), room);

      const other = await openRoom(otherContext, roomUrl);
      await page.locator("#chat-message-input:focus").waitFor();
      await page.keyboard.type(`hello from ${room}`);
      await page.keyboard.press("Enter");
      await waitForMessage(other, `hello from ${room}`);
      await waitForMessage(page, `hello from ${room}`);
      assertEquals(await countMessages(page, `hello from ${room}`), 1);
    }
  });

  await step(t, "an error from the server is shown as a notice, not as a message", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openRoom(context, server.httpUrl("/chat/errors/"));
    await liftLengthLimit(page);
    await sendMessage(page, "x".repeat(10_001));
    await page.locator("#chat-notice", { hasText: "Message is too long" }).waitFor();
    await sendMessage(page, "short is fine");
    await waitForMessage(page, "short is fine");
    assertEquals(await messageTexts(page), ["short is fine"]);
  });

  await step(t, "the room picker does nothing with an empty name", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/chat/"));
    await page.locator("#room-name-input").fill("   ");
    await page.click("#room-name-submit");
    await page.locator("#room-name-hint", { hasText: "Type the name of a room" }).waitFor();
    assertEquals(new URL(page.url()).pathname, "/chat/");
  });

  await step(t, "the room picker counts a name as the server does, composed", async () => {
    await using server = await startTestServer();
    await using context = await newContext(browser);
    const page = await openPage(context, server.httpUrl("/chat/"));
    // 100 characters written as 200 code points (e and a combining accent): a valid name.
    const decomposed = "e\u0301".repeat(100);
    await page.locator("#room-name-input").fill(decomposed);
    await page.click("#room-name-submit");
    await page.waitForURL((url) => url.pathname !== "/chat/");
    const room = decodeURIComponent(new URL(page.url()).pathname.split("/")[2]);
    assertEquals(room.normalize("NFC"), "\u00e9".repeat(100));
    // 60 characters that composing makes 120 (क़ is क and a dot): the server keeps them as written.
    await page.goto(server.httpUrl("/chat/"));
    await page.locator("#room-name-input").fill("\u0958".repeat(60));
    await page.click("#room-name-submit");
    await page.waitForURL((url) => url.pathname !== "/chat/");
    assertEquals(await page.locator("#chat-log").getAttribute("data-room"), "\u0958".repeat(60));
  });
});
