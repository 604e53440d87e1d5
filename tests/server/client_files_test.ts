/**
 * `clientRoutes()`: the package's browser client served by the app itself, each file at an
 * exact path, as the files on disk are, with an ETag a browser revalidates against.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { type App, CLIENT_FILES, clientRoutes, createApp } from "../../mod.ts";
import { createTestServices, type TestServices } from "../../testing.ts";

async function clientApp(
  path?: string,
): Promise<{ app: App; services: TestServices } & AsyncDisposable> {
  const services = await createTestServices();
  const app = createApp({ routes: clientRoutes(path ? { path } : {}), services });
  return {
    app,
    services,
    async [Symbol.asyncDispose]() {
      await app.close();
      await services[Symbol.asyncDispose]();
    },
  };
}

const get = (app: App, path: string, init: RequestInit = {}): Promise<Response> =>
  app.handle(new Request(`http://localhost${path}`, init));

Deno.test("each file of the client is served at /channels/ as it is on disk, as JavaScript", async () => {
  await using served = await clientApp();
  for (const name of CLIENT_FILES) {
    const response = await get(served.app, `/channels/${name}`);
    assertEquals(response.status, 200, name);
    assertEquals(response.headers.get("content-type"), "text/javascript; charset=UTF-8");
    assertEquals(response.headers.get("cache-control"), "no-cache");
    const onDisk = await Deno.readFile(new URL(`../../client/${name}`, import.meta.url));
    assertEquals(new Uint8Array(await response.arrayBuffer()), onDisk, name);
    assertEquals(response.headers.get("content-length"), String(onDisk.byteLength));
  }
});

Deno.test("a client file's ETag answers a revalidation with 304, and HEAD has no body", async () => {
  await using served = await clientApp();
  const first = await get(served.app, "/channels/channels_client.js");
  await first.body?.cancel();
  const tag = first.headers.get("etag") ?? "";
  assert(tag !== "", "an ETag");
  const again = await get(served.app, "/channels/channels_client.js", {
    headers: { "if-none-match": tag },
  });
  assertEquals([again.status, await again.text()], [304, ""]);
  const head = await get(served.app, "/channels/channels_client.js", { method: "HEAD" });
  assertEquals([head.status, head.headers.get("etag"), await head.text()], [200, tag, ""]);
});

Deno.test("only the client's own files are served: others, and ways out of the folder, are 404", async () => {
  await using served = await clientApp();
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
    const response = await get(served.app, path);
    await response.body?.cancel();
    assertEquals(response.status, 404, path);
  }
});

Deno.test("the client can be served under another path, and then only there", async () => {
  await using served = await clientApp("/assets/realtime/");
  const moved = await get(served.app, "/assets/realtime/live_socket.js");
  assertEquals(moved.status, 200);
  assert((await moved.text()).includes("export class LiveSocket"));
  const old = await get(served.app, "/channels/live_socket.js");
  await old.body?.cancel();
  assertEquals(old.status, 404);
});

Deno.test("a client path without both slashes, or with pattern syntax, is refused when the routes are made", () => {
  for (const path of ["channels/", "/channels", "/:room/", "/a*/"]) {
    assertThrows(() => clientRoutes({ path }), Error, "must start and end with", path);
  }
});
