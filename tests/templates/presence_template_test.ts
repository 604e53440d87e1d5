import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { presencePage } from "../../templates/presence.ts";

const EVIL = `<img src=x onerror="alert(1)">&'`;
const ESCAPED = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;";

function render(username: string, online = true): string {
  return presencePage({
    account: { username: "ada", csrfToken: "token" },
    users: [{ username: "ada", online: true }, { username, online }],
    recent: [{ username, status: "connected", time: "2025-01-01T12:34:56.000Z" }],
  }).toString();
}

Deno.test("a username is escaped in the list, its attribute and the feed", () => {
  const page = render(EVIL);
  assert(!page.includes("<img"), "a username became markup");
  assertStringIncludes(page, `data-username="${ESCAPED}"`);
  assertStringIncludes(page, `<span class="presence-name" dir="auto">${ESCAPED}</span>`);
  assertStringIncludes(page, `<bdi>${ESCAPED}</bdi> connected`);
});

Deno.test("each user's line says Online or Offline, and the count counts the online", () => {
  const page = render("bob", false);
  assertMatch(page, /data-username="bob"\s+data-online="false"/);
  assertEquals(page.match(/<li class="presence-user"[^]*?<\/li>/g)?.map(status), [
    "Online",
    "Offline",
  ]);
  assertStringIncludes(page, `<span id="online-count">1</span>`);
});

Deno.test("the page loads the live client and has the log-out control", () => {
  const page = render("bob");
  assertStringIncludes(page, `src="/static/presence.js"`);
  assertStringIncludes(page, ">Log out<");
});

function status(item: string): string {
  return item.match(/class="presence-status">(\w+)</)?.[1] ?? "";
}
