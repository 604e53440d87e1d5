import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";

/** The opening tag of the element with `id`, e.g. `<input id="x" autofocus>`. */
function tagWithId(page: string, id: string): string {
  const match = page.match(new RegExp(`<[a-z]+\\s[^>]*\\bid="${id}"[^>]*>`));
  if (match === null) throw new Error(`No element with id "${id}"`);
  return match[0];
}

Deno.test("the room picker asks for a room, with a focused input and a button", async () => {
  await using server = await startTestServer();
  const response = await fetch(server.httpUrl("/chat/"));
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/html; charset=utf-8");
  const page = await response.text();
  assertStringIncludes(page, "What chat room would you like to enter?");
  assertStringIncludes(tagWithId(page, "room-name-input"), "autofocus");
  tagWithId(page, "room-name-submit");
  assertStringIncludes(page, `src="/static/room_picker.js"`);
});

Deno.test("a room page has the log, a focused message input and a send button", async () => {
  await using server = await startTestServer();
  const page = await (await fetch(server.httpUrl("/chat/lobby/"))).text();
  tagWithId(page, "chat-log");
  assertStringIncludes(tagWithId(page, "chat-message-input"), "autofocus");
  tagWithId(page, "chat-message-submit");
  assertStringIncludes(tagWithId(page, "connection-state"), `data-state="connecting"`);
  assertStringIncludes(page, `src="/static/chat.js"`);
});

Deno.test("a Unicode room name with spaces is shown as it is written", async () => {
  await using server = await startTestServer();
  for (const room of ["café au lait", "東京"]) {
    const response = await fetch(server.httpUrl(`/chat/${encodeURIComponent(room)}/`));
    assertEquals(response.status, 200, room);
    const page = await response.text();
    assertStringIncludes(page, `<h1 class="room-title">${room}</h1>`);
    assertStringIncludes(tagWithId(page, "chat-log"), `data-room="${room}"`);
    assertStringIncludes(page, `<title>${room} · Chat</title>`);
  }
});

Deno.test("a room name with markup is shown as text, never run", async () => {
  await using server = await startTestServer();
  const room = `<script>alert("x")</script>`;
  const response = await fetch(server.httpUrl(`/chat/${encodeURIComponent(room)}/`));
  assertEquals(response.status, 200);
  const page = await response.text();
  assert(!page.includes("<script>alert"), "The room name reached the page unescaped");
  assertStringIncludes(page, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
});

Deno.test("a quote in a room name cannot break out of the data-room attribute", async () => {
  await using server = await startTestServer();
  const room = `a" onclick="alert(1)`;
  const page = await (await fetch(server.httpUrl(`/chat/${encodeURIComponent(room)}/`))).text();
  assertStringIncludes(tagWithId(page, "chat-log"), `data-room="a&quot; onclick=&quot;alert(1)"`);
});

Deno.test("addresses without the trailing slash redirect to the slashed one", async () => {
  await using server = await startTestServer();
  for (
    const [from, to] of [
      ["/chat", "/chat/"],
      ["/chat/lobby", "/chat/lobby/"],
      ["/chat/caf%C3%A9%20au%20lait", "/chat/caf%C3%A9%20au%20lait/"],
    ]
  ) {
    const response = await fetch(server.httpUrl(from), { redirect: "manual" });
    await response.body?.cancel();
    assertEquals(response.status, 301, from);
    assertEquals(new URL(response.headers.get("location")!, server.url).pathname, to);
  }
});

Deno.test("a room name longer than 100 characters is not found", async () => {
  await using server = await startTestServer();
  const response = await fetch(server.httpUrl(`/chat/${"x".repeat(101)}/`));
  await response.body?.cancel();
  assertEquals(response.status, 404);
  const longest = await fetch(server.httpUrl(`/chat/${encodeURIComponent("東".repeat(100))}/`));
  await longest.body?.cancel();
  assertEquals(longest.status, 200);
});
