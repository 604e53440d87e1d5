import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { jsonScript } from "../../templates/tutorial_chat.ts";

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

Deno.test("a room's message input cuts nothing the server takes: 10,000 emoji fit", async () => {
  await using server = await startTestServer();
  const page = await (await fetch(server.httpUrl("/chat/lobby/"))).text();
  // `maxlength` counts UTF-16 units; an emoji is two of them and one of the server's characters.
  const maxlength = Number(/maxlength="(\d+)"/.exec(tagWithId(page, "chat-message-input"))?.[1]);
  assert(maxlength >= "😀".repeat(10_000).length, `maxlength ${maxlength}`);
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
    assertStringIncludes(page, `<h1 class="room-title" dir="auto">${room}</h1>`);
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

Deno.test("the Channels tutorial's index page is its own markup with its script as a file", async () => {
  await using server = await startTestServer();
  const response = await fetch(server.httpUrl("/tutorial/chat/"));
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/html; charset=utf-8");
  const page = await response.text();
  assertStringIncludes(page, "What chat room would you like to enter?<br>");
  assertEquals(
    tagWithId(page, "room-name-input"),
    `<input id="room-name-input" type="text" size="100">`,
  );
  tagWithId(page, "room-name-submit");
  assertStringIncludes(page, `<script src="/static/tutorials/channels_index.js"></script>`);
  assert(!page.includes("<script>"), "An inline script, which the CSP would block");
});

Deno.test("the Channels tutorial's room page has its ids, the room as json_script and its script", async () => {
  await using server = await startTestServer();
  const response = await fetch(server.httpUrl("/tutorial/chat/lobby/"));
  assertEquals(response.status, 200);
  const page = await response.text();
  assertEquals(tagWithId(page, "chat-log"), `<textarea id="chat-log" cols="100" rows="20">`);
  assertEquals(
    tagWithId(page, "chat-message-input"),
    `<input id="chat-message-input" type="text" size="100">`,
  );
  tagWithId(page, "chat-message-submit");
  // As in the tutorial: the json_script element, then the script that reads it.
  const data = page.indexOf(`<script id="room-name" type="application/json">"lobby"</script>`);
  const script = page.indexOf(`<script src="/static/tutorials/channels_room.js"></script>`);
  assert(data > 0 && script > data, "The json_script element does not come before the script");
  assert(!page.includes("<script>"), "An inline script, which the CSP would block");
  const file = await fetch(server.httpUrl("/static/tutorials/channels_room.js"));
  assertEquals(file.status, 200);
  assertStringIncludes(await file.text(), "+ '/ws/chat/'");
});

Deno.test("the tutorial room's json_script escapes markup as Django does", async () => {
  await using server = await startTestServer();
  for (
    const [room, json] of [
      ["a<script>b", `"a\\u003Cscript\\u003Eb"`],
      [`<b>"&"<i>`, `"\\u003Cb\\u003E\\"\\u0026\\"\\u003Ci\\u003E"`],
      ["café au lait", `"caf\\u00e9 au lait"`],
    ]
  ) {
    const response = await fetch(server.httpUrl(`/tutorial/chat/${encodeURIComponent(room)}/`));
    assertEquals(response.status, 200, room);
    const page = await response.text();
    assertStringIncludes(page, `<script id="room-name" type="application/json">${json}</script>`);
    assertEquals(JSON.parse(json), room);
    assert(!page.includes("</script>b"), "The room name ended the json_script element");
  }
});

Deno.test("json_script keeps a string that holds </script> from ending its element", () => {
  const element = String(jsonScript("room-name", "a</script>b"));
  assertEquals(
    element,
    `<script id="room-name" type="application/json">"a\\u003C/script\\u003Eb"</script>`,
  );
});

Deno.test("the tutorial's room page is not found for a room its script cannot put in the socket's address", async () => {
  await using server = await startTestServer();
  // The script joins the name into '/ws/chat/' + roomName + '/' as it is: `q/../lobby` would
  // open the lobby's socket.
  // A browser reads `\` as `/` in a ws: URL: `q\..\lobby` would open the lobby's socket too.
  for (const room of ["q/../lobby", "q\\..\\lobby", "a?b", "c#d", "50%", "a</script>b"]) {
    const response = await fetch(server.httpUrl(`/tutorial/chat/${encodeURIComponent(room)}/`));
    assertEquals(response.status, 404, room);
    assertStringIncludes(await response.text(), "its script puts the name into the socket");
    // The site's own page opens it.
    const own = await fetch(server.httpUrl(`/chat/${encodeURIComponent(room)}/`));
    await own.body?.cancel();
    assertEquals(own.status, 200, room);
  }
});

Deno.test("the tutorial's room page is not found for an invalid room name", async () => {
  await using server = await startTestServer();
  for (const room of ["x".repeat(101), "%20", "tab%09"]) {
    const response = await fetch(server.httpUrl(`/tutorial/chat/${room}/`));
    assertEquals(response.status, 404, room);
    assertStringIncludes(await response.text(), "Room names are 1 to 100 characters");
  }
});

// Each page asked for goes to its location with a 301.
async function assertRedirects(cases: string[][]): Promise<void> {
  await using server = await startTestServer();
  for (const [asked, location] of cases) {
    const response = await fetch(server.httpUrl(asked), { redirect: "manual" });
    await response.body?.cancel();
    assertEquals([response.status, response.headers.get("location")], [301, location], asked);
  }
}

Deno.test("a room page asked for with spaces around the name is sent to the name without them", async () => {
  await assertRedirects([
    ["/tutorial/chat/lobby%20/", "/tutorial/chat/lobby/"],
    ["/chat/%20caf%C3%A9%20au%20lait%C2%A0/?x=1", "/chat/caf%C3%A9%20au%20lait/?x=1"],
  ]);
});

Deno.test("a room page asked for in decomposed Unicode is sent to the same room's composed name", async () => {
  // "café" as "e" and a combining acute accent (NFD): it looks the same, and is the same room.
  await assertRedirects([
    ["/chat/cafe%CC%81/?x=1", "/chat/caf%C3%A9/?x=1"],
    ["/tutorial/chat/%20cafe%CC%81/", "/tutorial/chat/caf%C3%A9/"],
  ]);
  await using server = await startTestServer();
  const composed = await fetch(server.httpUrl("/chat/caf%C3%A9/"), { redirect: "manual" });
  await composed.body?.cancel();
  assertEquals(composed.status, 200);
});
