/**
 * `GET /admin/`: anonymous visitors are sent to log in and back, signed-in users who are not
 * staff get 403, staff users get the page (which loads its script and opens its socket).
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

const PASSWORD = "quiet river stone";

/** A session cookie for a new user (staff or not) of `app`. */
async function signedIn(app: TestApp, username: string, staff: boolean): Promise<string> {
  const { users, sessions } = app.services;
  await users.create(username, PASSWORD, { staff });
  const { id } = await sessions.create(username);
  return `sessionid=${id}`;
}

function get(app: TestApp, path: string, cookie?: string): Promise<Response> {
  const headers: HeadersInit = cookie === undefined ? {} : { cookie };
  return app.handle(new Request(`http://localhost${path}`, { headers }));
}

Deno.test("an anonymous visitor of /admin/ is sent to log in, and back after", async () => {
  await using app = await createTestApp();
  const response = await get(app, "/admin/");
  assertEquals(response.status, 302);
  assertEquals(response.headers.get("location"), "/log_in/?next=/admin/");
  await response.body?.cancel();
});

Deno.test("a signed-in user who is not staff gets 403 from /admin/, and the log says why", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  const cookie = await signedIn(app, "bob", false);
  log.setLevel("info");
  const response = await get(app, "/admin/", cookie);
  assertEquals(response.status, 403);
  assertStringIncludes(await response.text(), "staff users only");
  await captured.waitFor(/^HTTP GET \/admin\/ 403 .*\(the admin page is for staff users only\)$/);
});

Deno.test("a staff user gets the admin page with its tables and script", async () => {
  await using app = await createTestApp();
  const response = await get(app, "/admin/", await signedIn(app, "ada", true));
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("cache-control"), "no-store");
  const page = await response.text();
  assertStringIncludes(page, '<script type="module" src="/static/admin.js"></script>');
  assertStringIncludes(page, 'id="processes"');
  assertStringIncludes(page, 'id="groups"');
  const script = await get(app, "/static/admin.js");
  assertEquals(script.status, 200);
  assertStringIncludes(await script.text(), "/ws/admin/");
});

Deno.test("a user stored before staff existed is not staff", async () => {
  await using app = await createTestApp();
  const { store, users, sessions } = app.services;
  await users.create("old", PASSWORD);
  // As a record written by an earlier version: no `staff` field at all.
  const [entry] = await store.list<Record<string, unknown>>(["users"]);
  const { staff: _staff, ...before } = entry.value;
  await store.set(entry.key, before);
  assertEquals((await users.find("old"))?.staff, false);
  const { id } = await sessions.create("old");
  const response = await get(app, "/admin/", `sessionid=${id}`);
  assertEquals(response.status, 403);
  await response.body?.cancel();
});
