import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { join, toFileUrl } from "@std/path";
import { startTestServer } from "../_support/server.ts";
import { safeSegments, staticFileHandler } from "../../server/static_files.ts";
import type { RequestContext, Services } from "../../server/context.ts";

/** A folder with a public file, a secret next to it, and symlinks in and out. */
async function fixture(): Promise<
  { root: string; base: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const base = await Deno.makeTempDir({ prefix: "static-test-" });
  const root = join(base, "public");
  await Deno.mkdir(join(root, "sub"), { recursive: true });
  await Deno.writeTextFile(join(root, "hello.txt"), "hello");
  await Deno.writeTextFile(join(root, "café.txt"), "crème");
  await Deno.writeTextFile(join(root, ".env"), "SECRET=1");
  await Deno.writeTextFile(join(root, "sub", "deep.js"), "export {};");
  await Deno.writeTextFile(join(base, "secret.txt"), "top secret");
  await Deno.symlink(join(base, "secret.txt"), join(root, "leak.txt"));
  await Deno.symlink(base, join(root, "outside"));
  await Deno.symlink(join(root, "hello.txt"), join(root, "alias.txt"));
  // A sibling whose name starts with the folder's: outside all the same.
  await Deno.mkdir(join(base, "public-private"));
  await Deno.writeTextFile(join(base, "public-private", "secret.txt"), "top secret");
  await Deno.symlink(join(base, "public-private", "secret.txt"), join(root, "sibling.txt"));
  return { root, base, [Symbol.asyncDispose]: () => Deno.remove(base, { recursive: true }) };
}

async function get(root: string | URL, path: string, headers: HeadersInit = {}): Promise<Response> {
  const serve = staticFileHandler(root, { prefix: "/static/" });
  const url = new URL(`http://localhost${path}`);
  const context: RequestContext = { url, params: {}, client: "", services: {} as Services };
  return await serve(new Request(url, { headers }), context);
}

Deno.test("a file is served with its content type, length, ETag and cache policy", async () => {
  await using files = await fixture();
  const response = await get(files.root, "/static/sub/deep.js");
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/javascript; charset=UTF-8");
  assertEquals(response.headers.get("content-length"), "10");
  assertMatch(response.headers.get("etag")!, /^W\/".+"$/);
  assertEquals(response.headers.get("cache-control"), "no-cache");
  assertEquals(await response.text(), "export {};");
});

Deno.test("a folder given as a file: URL is served, and still kept shut", async () => {
  await using files = await fixture();
  const root = toFileUrl(files.root + "/");
  const response = await get(root, "/static/sub/deep.js");
  assertEquals(response.status, 200);
  assertEquals(await response.text(), "export {};");
  const leak = await get(root, "/static/leak.txt");
  await leak.body?.cancel();
  assertEquals(leak.status, 404);
});

Deno.test("a request with the current ETag gets 304 and no body", async () => {
  await using files = await fixture();
  const first = await get(files.root, "/static/hello.txt");
  await first.body?.cancel();
  const again = await get(files.root, "/static/hello.txt", {
    "if-none-match": first.headers.get("etag")!,
  });
  assertEquals(again.status, 304);
  assertEquals(again.body, null);
  const stale = await get(files.root, "/static/hello.txt", { "if-none-match": 'W/"old"' });
  assertEquals(stale.status, 200);
  assertEquals(await stale.text(), "hello");
});

Deno.test("If-Modified-Since, If-Match and If-Unmodified-Since are answered as RFC 9110 orders them", async () => {
  await using files = await fixture();
  const first = await get(files.root, "/static/hello.txt");
  await first.body?.cancel();
  const modified = first.headers.get("last-modified")!;
  const tag = first.headers.get("etag")!;
  const status = async (headers: HeadersInit) => {
    const response = await get(files.root, "/static/hello.txt", headers);
    await response.body?.cancel();
    return response.status;
  };
  const earlier = new Date(Date.parse(modified) - 60_000).toUTCString();
  assertEquals(await status({ "if-modified-since": modified }), 304);
  assertEquals(await status({ "if-modified-since": earlier }), 200);
  assertEquals(await status({ "if-modified-since": "not a date" }), 200);
  assertEquals(await status({ "if-modified-since": "2030" }), 200, "not an HTTP-date: ignored");
  // The obsolete forms are dates in UTC too, whatever the server's time zone.
  const date = new Date(Date.parse(modified));
  const asctime = date.toUTCString().replace(
    /^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/,
    (_all, day, dd, month, year, time) => `${day} ${month} ${dd.padStart(2, " ")} ${time} ${year}`,
  );
  assertEquals(await status({ "if-modified-since": asctime }), 304, asctime);
  const hourEarlier = new Date(date.getTime() - 3_600_000).toUTCString().replace(
    /^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/,
    (_all, day, dd, month, year, time) => `${day} ${month} ${dd.padStart(2, " ")} ${time} ${year}`,
  );
  assertEquals(await status({ "if-modified-since": hourEarlier }), 200, hourEarlier);
  // If-None-Match wins over If-Modified-Since: a changed tag is a changed file.
  assertEquals(await status({ "if-modified-since": modified, "if-none-match": 'W/"old"' }), 200);
  assertEquals(await status({ "if-unmodified-since": earlier }), 412);
  assertEquals(await status({ "if-unmodified-since": modified }), 200);
  // Our tags are weak: If-Match compares strongly, so only `*` matches an existing file.
  assertEquals(await status({ "if-match": tag }), 412);
  assertEquals(await status({ "if-match": "*" }), 200);
  const notModified = await get(files.root, "/static/hello.txt", { "if-none-match": tag });
  assertEquals(notModified.status, 304);
  assertEquals(notModified.headers.get("content-type"), null, "a 304 has no Content-Type");
  assertEquals(notModified.headers.get("etag"), tag);
  assertEquals(notModified.headers.get("last-modified"), modified);
});

Deno.test("the ETag changes when the file changes", async () => {
  await using files = await fixture();
  const before = await get(files.root, "/static/hello.txt");
  await before.body?.cancel();
  await Deno.writeTextFile(join(files.root, "hello.txt"), "hello, world");
  const after = await get(files.root, "/static/hello.txt", {
    "if-none-match": before.headers.get("etag")!,
  });
  assertEquals(after.status, 200);
  assertEquals(await after.text(), "hello, world");
});

Deno.test("percent-encoded file names are decoded", async () => {
  await using files = await fixture();
  const response = await get(files.root, "/static/caf%C3%A9.txt");
  assertEquals(response.status, 200);
  assertEquals(await response.text(), "crème");
});

Deno.test("symlinks that lead out of the folder are not followed, ones inside are", async () => {
  await using files = await fixture();
  assertEquals((await get(files.root, "/static/leak.txt")).status, 404);
  assertEquals((await get(files.root, "/static/outside/secret.txt")).status, 404);
  assertEquals((await get(files.root, "/static/sibling.txt")).status, 404);
  const alias = await get(files.root, "/static/alias.txt");
  assertEquals(await alias.text(), "hello");
});

Deno.test("directories, dotfiles and missing files are not found", async () => {
  await using files = await fixture();
  for (const path of ["/static/", "/static/sub", "/static/sub/", "/static/.env", "/static/nope"]) {
    assertEquals((await get(files.root, path)).status, 404, path);
  }
});

Deno.test("path segments that could escape the folder are refused", () => {
  const refused = [
    "/static/../deno.json",
    "/static/%2e%2e/deno.json",
    "/static/%2E%2E%2Fdeno.json",
    "/static/..%2fdeno.json",
    "/static/%252e%252e%252fdeno.json",
    "/static/..%5cdeno.json",
    "/static/..\\deno.json",
    "/static/site.css%00.js",
    "/static/%00",
    "/static//etc/passwd",
    "/static/C:%5cwindows",
    "/static/%E0%A4%A",
  ];
  for (const path of refused) assertEquals(safeSegments(path, "/static/"), null, path);
  assertEquals(safeSegments("/static/a/b%20c.css", "/static/"), ["a", "b c.css"]);
});

/** Sends `path` as it is, unnormalized, in a raw HTTP/1.1 request. */
async function rawGet(port: number, path: string): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(request));
  const text = await new Response(conn.readable).text();
  return { status: Number(text.split(" ")[1]), text };
}

Deno.test("the server never answers a traversal attempt with a file outside static/", async () => {
  await using server = await startTestServer();
  const attempts = [
    "/static/../deno.json",
    "/static/%2e%2e/deno.json",
    "/static/%2e%2e%2fdeno.json",
    "/static/..%2fdeno.json",
    "/static/%252e%252e%252fdeno.json",
    "/static/..%5cdeno.json",
    "/static/..%5c..%5cdeno.json",
    "/static/site.css%00",
    "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
  ];
  for (const path of attempts) {
    const { status, text } = await rawGet(server.port, path);
    assert(status === 400 || status === 404, `${path} answered ${status}`);
    assert(!text.includes('"tasks"') && !text.includes("root:"), `${path} leaked a file`);
  }
});

Deno.test("the site's stylesheet and scripts are served by the app", async () => {
  await using server = await startTestServer();
  const css = await fetch(server.httpUrl("/static/site.css"));
  assertEquals(css.status, 200);
  assertEquals(css.headers.get("content-type"), "text/css; charset=UTF-8");
  assertStringIncludes(await css.text(), ".chat-log");
  for (const script of ["/static/chat.js", "/static/room_picker.js", "/channels/backoff.js"]) {
    const js = await fetch(server.httpUrl(script));
    assertEquals(js.headers.get("content-type"), "text/javascript; charset=UTF-8", script);
    await js.body?.cancel();
  }
});

Deno.test("HEAD gives a file's headers without its body", async () => {
  await using server = await startTestServer();
  const get = await fetch(server.httpUrl("/static/site.css"));
  const length = (await get.arrayBuffer()).byteLength;
  const head = await fetch(server.httpUrl("/static/site.css"), { method: "HEAD" });
  assertEquals(head.status, 200);
  assertEquals(head.headers.get("content-length"), String(length));
  assertEquals(head.headers.get("etag"), get.headers.get("etag"));
  assertEquals(await head.text(), "");
});

Deno.test("a revalidation through the server gets 304", async () => {
  await using server = await startTestServer();
  const first = await fetch(server.httpUrl("/static/chat.js"));
  await first.body?.cancel();
  const again = await fetch(server.httpUrl("/static/chat.js"), {
    headers: { "if-none-match": first.headers.get("etag")! },
  });
  assertEquals(again.status, 304);
  assertEquals(await again.text(), "");
});

Deno.test("/favicon.ico leads to the site's icon, so pages that name none get no 404", async () => {
  await using server = await startTestServer();
  const response = await fetch(server.httpUrl("/favicon.ico"));
  assertEquals([response.status, response.headers.get("content-type")], [200, "image/svg+xml"]);
  assert(response.redirected);
  assertStringIncludes(await response.text(), "<svg");
});

Deno.test("a static prefix without both slashes is refused when the handler is made, not by 404s", () => {
  for (const prefix of ["/static", "static/", ""]) {
    assertThrows(
      () => staticFileHandler("./static", { prefix }),
      TypeError,
      'A static prefix must start and end with "/"',
    );
  }
});
