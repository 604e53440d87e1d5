/**
 * The password change page, as Django's `PasswordChangeView` behaves: errors beside the fields,
 * the sign-up rules, a redirect to `/account/password/done/`; and what this server adds: wrong
 * old passwords are throttled, and the user's other sessions end, their sockets closed.
 */
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import type { Store } from "../../storage/store.ts";

const PASSWORD = "quiet river stone";
const NEW_PASSWORD = "amber lantern field";
const PAGE = "/account/password/";

function change(client: WebClient, fields: Record<string, string>): Promise<Response> {
  return client.submit(PAGE, fields);
}

async function storedHash(server: TestServer, username: string): Promise<string | undefined> {
  return (await server.app.services.users.find(username))?.passwordHash;
}

async function logsIn(server: TestServer, username: string, password: string): Promise<boolean> {
  const response = await new WebClient(server.url).submit("/log_in/", { username, password });
  await response.body?.cancel();
  return response.status === 302;
}

Deno.test("the password page asks anonymous visitors to log in first, then comes back", async () => {
  await using server = await startTestServer();
  const anonymous = new WebClient(server.url);
  const response = await anonymous.get(PAGE);
  assertEquals(response.status, 302);
  assertEquals(response.headers.get("location"), "/log_in/?next=/account/password/");
  const posted = await anonymous.post(PAGE, { old_password: PASSWORD });
  await posted.body?.cancel();
  assertEquals(posted.status, 302, "a POST too");
});

Deno.test("the password page has Django's fields and says access tokens are kept", async () => {
  await using server = await startTestServer();
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const response = await ada.get(PAGE);
  assertEquals(response.status, 200);
  const page = await response.text();
  for (const name of ["old_password", "new_password1", "new_password2"]) {
    assertStringIncludes(page, `name="${name}" id="id_${name}"`);
  }
  assertStringIncludes(page, 'href="/account/tokens/"');
  assertStringIncludes(page, "access tokens</a> keep working");
  const home = await (await ada.get("/chat/")).text();
  assertStringIncludes(home, 'href="/account/password/"', "the header links to it");
});

Deno.test("a wrong old password keeps the hash and says so beside the field, echoing nothing", async () => {
  await using server = await startTestServer();
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const before = await storedHash(server, "ada");
  const response = await change(ada, {
    old_password: "not my password",
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  assertEquals(response.status, 400);
  const page = await response.text();
  assertStringIncludes(
    page,
    '<ul class="form-errors" id="id_old_password_errors"><li>Your old password was entered incorrectly. Please enter it again.</li></ul>',
  );
  assert(!page.includes("not my password") && !page.includes(NEW_PASSWORD), "no password echoed");
  assertEquals(await storedHash(server, "ada"), before);
});

Deno.test("new passwords that differ or break the sign-up rules are refused beside their fields", async () => {
  await using server = await startTestServer();
  const ada = await WebClient.signedIn(server.url, "ada_lovelace", PASSWORD);
  const before = await storedHash(server, "ada_lovelace");
  const mismatch = await change(ada, {
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: "another lantern field",
  });
  assertEquals(mismatch.status, 400);
  const mismatchPage = await mismatch.text();
  assertStringIncludes(
    mismatchPage,
    'id="id_new_password2_errors"><li>The two password fields didn’t match.</li>',
  );
  assert(!mismatchPage.includes(PASSWORD), "the old password is not echoed either");
  const similar = await change(ada, {
    old_password: PASSWORD,
    new_password1: "adalovelace1",
    new_password2: "adalovelace1",
  });
  assertEquals(similar.status, 400);
  assertStringIncludes(await similar.text(), "The password is too similar to the username.");
  const short = await change(ada, {
    old_password: PASSWORD,
    new_password1: "1234",
    new_password2: "1234",
  });
  const shortPage = await short.text();
  assertStringIncludes(shortPage, "This password is too short.");
  assertStringIncludes(shortPage, "This password is entirely numeric.");
  assertEquals(await storedHash(server, "ada_lovelace"), before);
});

Deno.test("a change leads to the done page, and only the new password logs in", async () => {
  await using server = await startTestServer();
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const oldSession = ada.jar.get("sessionid");
  const before = await storedHash(server, "ada");
  const response = await change(ada, {
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  await response.body?.cancel();
  assertEquals(response.status, 302);
  assertEquals(response.headers.get("location"), "/account/password/done/");
  assertNotEquals(await storedHash(server, "ada"), before);
  assertNotEquals(ada.jar.get("sessionid"), oldSession, "this session got a new id");
  const done = await ada.get("/account/password/done/");
  assertEquals(done.status, 200, "and is still signed in");
  assertStringIncludes(await done.text(), "Your password was changed.");
  assertEquals(await logsIn(server, "ada", PASSWORD), false);
  assertEquals(await logsIn(server, "ada", NEW_PASSWORD), true);
});

Deno.test("a change without a valid CSRF token is refused with 403", async () => {
  await using server = await startTestServer();
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const before = await storedHash(server, "ada");
  const response = await ada.post(PAGE, {
    csrfmiddlewaretoken: "x".repeat(64),
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  assertEquals(response.status, 403);
  assertStringIncludes(await response.text(), "CSRF verification failed.");
  assertEquals(await storedHash(server, "ada"), before);
});

Deno.test("wrong old passwords are throttled as failed log-ins are: 429 with Retry-After", async () => {
  await using server = await startTestServer({
    loginThrottle: { perUsername: 3, perAddress: 100, windowSeconds: 900 },
  });
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const fields = { new_password1: NEW_PASSWORD, new_password2: NEW_PASSWORD };
  for (let i = 0; i < 3; i++) {
    const response = await change(ada, { old_password: `guess ${i}`, ...fields });
    await response.body?.cancel();
    assertEquals(response.status, 400);
  }
  const blocked = await change(ada, { old_password: PASSWORD, ...fields });
  assertEquals(blocked.status, 429, "even the right password waits");
  const retryAfter = Number(blocked.headers.get("retry-after"));
  assert(retryAfter > 0 && retryAfter <= 900, `Retry-After: ${retryAfter}`);
  assertStringIncludes(await blocked.text(), "Too many failed password attempts.");
  assertEquals(await logsIn(server, "ada", NEW_PASSWORD), false, "the password did not change");
});

Deno.test("a change that other changes to the account kept beating gives the form again with 409", async () => {
  const store = await DenoKvStore.open(":memory:");
  // Every change to a user finds it changed since its read, as when another tab or process
  // writes the user each time between this change's read and its write.
  let beaten = false;
  await using app = await createTestApp({}, {
    store: {
      ...storeMethods(store),
      replace: (key, expected, value) =>
        beaten && key[0] === "users" ? Promise.resolve(false) : store.replace(key, expected, value),
    },
  });
  await using server = serve(app);
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const before = (await app.services.users.find("ada"))?.passwordHash;
  beaten = true;
  const response = await change(ada, {
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  assertEquals(response.status, 409);
  const page = await response.text();
  assertStringIncludes(page, "Your account was changed at the same moment: please try again.");
  assertStringIncludes(page, 'name="old_password"', "the form, to send again");
  assertEquals((await app.services.users.find("ada"))?.passwordHash, before);
  beaten = false;
  const again = await change(ada, {
    old_password: PASSWORD,
    new_password1: NEW_PASSWORD,
    new_password2: NEW_PASSWORD,
  });
  await again.body?.cancel();
  assertEquals(again.status, 302, "sent again, it goes through");
});

// `store`'s methods, bound, for a test to replace one.
function storeMethods(store: Store): Store {
  return {
    get: (key) => store.get(key),
    set: (key, value, options) => store.set(key, value, options),
    create: (key, value) => store.create(key, value),
    replace: (key, expected, value) => store.replace(key, expected, value),
    delete: (key) => store.delete(key),
    writeMany: (changes) => store.writeMany(changes),
    list: (prefix, options) => store.list(prefix, options),
    close: () => store.close(),
  };
}

// `app` on a port, for the cookie jar; `await using` stops it.
function serve(app: TestApp): { url: string; [Symbol.asyncDispose](): Promise<void> } {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    (request, info) => app.handle(request, info),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
