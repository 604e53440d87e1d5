import { assertEquals, assertStringIncludes } from "@std/assert";
import { MAX_PATH_LENGTH, Router } from "../../server/router.ts";
import { createTestApp } from "../_support/test_app.ts";

const router = new Router([
  { method: "GET", path: "/chat/", handler: "index" },
  { method: "GET", path: "/chat/:room/", handler: "room" },
  { method: "POST", path: "/chat/:room/", handler: "post" },
  { method: "GET", path: "/files/:name", handler: "file" },
  { method: "GET", path: "/ping/", handler: "ping-get" },
  { method: "HEAD", path: "/ping/", handler: "ping-head" },
  { method: "POST", path: "/upload/", handler: "upload" },
  { method: "GET", path: "/static/*", handler: "static" },
]);

Deno.test("an exact path finds its route with no parameters", () => {
  assertEquals(router.match("GET", "/chat/"), { kind: "found", handler: "index", params: {} });
});

Deno.test("a pattern path finds its route and names its parameters", () => {
  assertEquals(router.match("GET", "/chat/lobby/"), {
    kind: "found",
    handler: "room",
    params: { room: "lobby" },
  });
});

Deno.test("path parameters arrive percent-decoded, Unicode and spaces included", () => {
  const room = (path: string) => {
    const match = router.match("GET", path);
    return match.kind === "found" ? match.params.room : match.kind;
  };
  assertEquals(room(new URL("http://x/chat/café au lait/").pathname), "café au lait");
  assertEquals(room("/chat/%E6%9D%B1%E4%BA%AC/"), "東京");
  assertEquals(room("/chat/a%2Fb/"), "a/b");
  assertEquals(room("/chat/1+1%2B2/"), "1+1+2");
});

Deno.test("an unknown path is not found", () => {
  assertEquals(router.match("GET", "/nowhere/"), { kind: "not-found" });
  assertEquals(router.match("GET", "/chat/a/b/"), { kind: "not-found" });
});

Deno.test("a room name of 100 characters fits the bound however Unicode writes it", () => {
  // Decomposed (NFD), a Hangul syllable is three code points of three bytes: 27 characters.
  const room = encodeURIComponent("한".repeat(100).normalize("NFD"));
  assertEquals(router.match("GET", `/chat/${room}/`).kind, "found");
});

Deno.test("a path longer than the bound is refused before any pattern sees it", () => {
  const longest = `/files/${"a".repeat(MAX_PATH_LENGTH - "/files/".length)}`;
  assertEquals(router.match("GET", longest).kind, "found");
  assertEquals(router.match("GET", `${longest}a`), { kind: "uri-too-long" });
});

Deno.test("a known path with the wrong method gets 405 with the methods that work", () => {
  assertEquals(router.match("DELETE", "/chat/lobby/"), {
    kind: "method-not-allowed",
    allow: ["GET", "HEAD", "POST"],
  });
  assertEquals(router.match("GET", "/upload/"), { kind: "method-not-allowed", allow: ["POST"] });
});

Deno.test("HEAD is served by the GET route unless a HEAD route exists", () => {
  assertEquals(router.match("HEAD", "/chat/"), { kind: "found", handler: "index", params: {} });
  assertEquals(router.match("HEAD", "/ping/"), {
    kind: "found",
    handler: "ping-head",
    params: {},
  });
  assertEquals(router.match("HEAD", "/upload/"), { kind: "method-not-allowed", allow: ["POST"] });
});

Deno.test("a path without its trailing slash redirects to it, keeping the query", () => {
  assertEquals(router.match("GET", "/chat"), { kind: "redirect", location: "/chat/" });
  assertEquals(router.match("HEAD", "/chat/lobby", "?since=5&q=a%20b"), {
    kind: "redirect",
    location: "/chat/lobby/?since=5&q=a%20b",
  });
});

Deno.test("no trailing-slash redirect for POST, or when the slashed path does not exist", () => {
  // Not redirected (its body would be lost), but the log says where it was meant to go.
  const post = router.match("POST", "/chat/lobby");
  assertEquals(post.kind, "not-found");
  assertStringIncludes((post as { reason: string }).reason, "/chat/lobby/ has one, but a POST");
  assertEquals(router.match("GET", "/files/readme.txt").kind, "found");
  assertEquals(router.match("GET", "/nowhere"), { kind: "not-found" });
});

Deno.test("a path starting with two slashes never redirects to another host", () => {
  // A catch-all page route would match "//evil.com/", and "Location: //evil.com/" leaves the site.
  const pages = new Router([{ method: "GET", path: "/(.*)/", handler: "page" }]);
  assertEquals(pages.match("GET", "/about"), { kind: "redirect", location: "/about/" });
  assertEquals(pages.match("GET", "//evil.com"), { kind: "not-found" });
  assertEquals(pages.match("GET", new URL("http://x/\\evil.com").pathname), { kind: "not-found" });
});

Deno.test("malformed percent-encoding in a parameter is a bad request", () => {
  assertEquals(router.match("GET", "/chat/%E0%A4%A/").kind, "bad-request");
  assertEquals(router.match("GET", "/chat/%ZZ/").kind, "bad-request");
});

Deno.test("the app answers 404 with a page, 405 with Allow, 400 for bad encoding", async () => {
  await using app = await createTestApp();
  const status = async (method: string, path: string) => {
    const response = await app.handle(new Request(`http://localhost${path}`, { method }));
    await response.body?.cancel();
    return [response.status, response.headers.get("allow")];
  };
  assertEquals(await status("GET", "/nowhere/"), [404, null]);
  assertEquals(await status("POST", "/chat/"), [405, "GET, HEAD"]);
  assertEquals(await status("GET", "/chat/%ZZ/"), [400, null]);
});

Deno.test("the app's trailing-slash redirect keeps the query", async () => {
  await using app = await createTestApp();
  const redirected = await app.handle(new Request("http://localhost/chat?x=1&y=%C3%A9"));
  assertEquals(redirected.status, 301);
  assertEquals(redirected.headers.get("location"), "/chat/?x=1&y=%C3%A9");
});

Deno.test("the app answers HEAD like GET, without a body", async () => {
  await using app = await createTestApp();
  const get = await app.handle(new Request("http://localhost/chat/"));
  const head = await app.handle(new Request("http://localhost/chat/", { method: "HEAD" }));
  await get.body?.cancel();
  assertEquals(head.status, get.status);
  assertEquals(head.headers.get("content-type"), get.headers.get("content-type"));
  assertEquals(head.body, null);
});

Deno.test("encoded letters, digits, '-', '_' and '~' are read as themselves; a %2F is not a /", () => {
  assertEquals(router.match("GET", "/ch%61t/"), { kind: "found", handler: "index", params: {} });
  assertEquals(router.match("GET", "/%63%48at/").kind, "not-found"); // %48 is "H": paths keep case
  assertEquals(router.match("GET", "/chat/lo%62%62y/"), {
    kind: "found",
    handler: "room",
    params: { room: "lobby" },
  });
  assertEquals(router.match("GET", "/chat/a%2Fb/"), {
    kind: "found",
    handler: "room",
    params: { room: "a/b" },
  });
  assertEquals(router.match("GET", "/ch%61t"), { kind: "redirect", location: "/chat/" });
});

Deno.test("a stray '%' leaves the path undecoded: nothing is decoded twice", () => {
  // `%%34%31` decoded around the "%" would read `%41`, and its parameter `A`.
  assertEquals(router.match("GET", "/chat/%%34%31/"), {
    kind: "bad-request",
    reason: "Malformed percent-encoding in the path",
  });
  assertEquals(router.match("GET", "/chat/%2%35%34%31/").kind, "bad-request");
  // A "%" written as "%25" stays one "%": the room is "%41", decoded once.
  assertEquals(router.match("GET", "/chat/%25%34%31/"), {
    kind: "found",
    handler: "room",
    params: { room: "%41" },
  });
});
