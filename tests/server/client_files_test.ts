/**
 * `clientRoutes()`: the package's browser client served by the app itself, each file at an
 * exact path, as the files on disk are, with an ETag a browser revalidates against.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { type App, CLIENT_FILES, clientRoutes, createApp } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";

/** Runs `use` on an app whose only routes are the client's, closed afterwards. */
async function withClientApp(use: (app: App) => Promise<void>, path?: string): Promise<void> {
  await using services = await createTestServices();
  const app = createApp({ routes: clientRoutes(path ? { path } : {}), services });
  try {
    await use(app);
  } finally {
    await app.close();
  }
}

const get = (app: App, path: string, init: RequestInit = {}): Promise<Response> =>
  app.handle(new Request(`http://localhost${path}`, init));

Deno.test("each file of the client is served at /channels/ as it is on disk, as JavaScript", () =>
  withClientApp(async (app) => {
    for (const name of CLIENT_FILES) {
      const response = await get(app, `/channels/${name}`);
      assertEquals(response.status, 200, name);
      assertEquals(response.headers.get("content-type"), "text/javascript; charset=UTF-8");
      assertEquals(response.headers.get("cache-control"), "no-cache");
      const onDisk = await Deno.readFile(new URL(`../../client/${name}`, import.meta.url));
      assertEquals(new Uint8Array(await response.arrayBuffer()), onDisk, name);
      assertEquals(response.headers.get("content-length"), String(onDisk.byteLength));
    }
  }));

Deno.test("every module of the client folder is served, so none of its imports fails in a page", async () => {
  // The modules import one another relatively: one left out of the list is a 404 in the browser.
  const onDisk: string[] = [];
  for await (const entry of Deno.readDir(new URL("../../client/", import.meta.url))) {
    if (entry.isFile && entry.name.endsWith(".js")) onDisk.push(entry.name);
  }
  assertEquals([...CLIENT_FILES].sort(), onDisk.sort());
});

Deno.test("a client file's ETag answers a revalidation with 304, and HEAD has no body", () =>
  withClientApp(async (app) => {
    const first = await get(app, "/channels/channels_client.js");
    await first.body?.cancel();
    const tag = first.headers.get("etag") ?? "";
    assert(tag !== "", "an ETag");
    const again = await get(app, "/channels/channels_client.js", {
      headers: { "if-none-match": tag },
    });
    assertEquals([again.status, await again.text()], [304, ""]);
    const head = await get(app, "/channels/channels_client.js", { method: "HEAD" });
    assertEquals([head.status, head.headers.get("etag"), await head.text()], [200, tag, ""]);
  }));

Deno.test("only the client's own files are served: others, and ways out of the folder, are 404", () =>
  withClientApp(async (app) => {
    for (
      const path of [
        "/channels/",
        "/channels/mod.d.ts",
        "/channels/other.js",
        "/channels/../mod.ts",
        "/channels/%2e%2e/mod.ts",
        "/channels/sub/backoff.js",
      ]
    ) {
      const response = await get(app, path);
      await response.body?.cancel();
      assertEquals(response.status, 404, path);
    }
  }));

Deno.test("the client can be served under another path, and then only there", () =>
  withClientApp(async (app) => {
    const moved = await get(app, "/assets/realtime/live_socket.js");
    assertEquals(moved.status, 200);
    assert((await moved.text()).includes("export class LiveSocket"));
    const old = await get(app, "/channels/live_socket.js");
    await old.body?.cancel();
    assertEquals(old.status, 404);
  }, "/assets/realtime/"));

Deno.test("a client path without both slashes, or with pattern syntax, is refused when the routes are made", () => {
  for (const path of ["channels/", "/channels", "/:room/", "/a*/"]) {
    assertThrows(() => clientRoutes({ path }), Error, "must start and end with", path);
  }
});
