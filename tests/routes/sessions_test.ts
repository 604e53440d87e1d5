/** Log-in and log-out: the session cookie, where a log-in leads, and accounts kept across a restart. */
import { assert, assertEquals, assertFalse, assertMatch, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { parseSetCookie, WebClient } from "../_support/cookie_jar.ts";
import { BAD_CREDENTIALS } from "../../routes/accounts.ts";

const PASSWORD = "quiet river stone";

/** The opening tag of the element with `id`. */
function tagWithId(page: string, id: string): string {
  const match = page.match(new RegExp(`<[a-z]+\\s[^>]*\\bid="${id}"[^>]*>`));
  if (match === null) throw new Error(`No element with id "${id}"`);
  return match[0];
}

function setCookie(response: Response, name: string) {
  const header = response.headers.getSetCookie().find((h) => h.startsWith(`${name}=`));
  if (header === undefined) throw new Error(`No Set-Cookie for ${name}`);
  return parseSetCookie(header);
}

Deno.test("the session cookie is HttpOnly, SameSite=Lax, Path=/ and lasts two weeks", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  const cookie = setCookie(await client.logIn("ada", PASSWORD), "sessionid");
  assertMatch(cookie.value, /^[A-Za-z0-9_-]{43}$/);
  assertEquals(cookie.attributes.get("httponly"), true);
  assertEquals(cookie.attributes.get("samesite"), "Lax");
  assertEquals(cookie.attributes.get("path"), "/");
  assertEquals(cookie.attributes.get("max-age"), String(14 * 24 * 3600));
  assertFalse(cookie.attributes.has("secure"), "plain http: no Secure flag");
});

Deno.test("a wrong password and an unknown username get the same answer", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  const answers = [];
  for (const [username, password] of [["ada", "wrong password"], ["nobody", PASSWORD]]) {
    const response = await client.submit("/log_in/", { username, password });
    const page = await response.text();
    answers.push([response.status, page.includes(BAD_CREDENTIALS)]);
    assertStringIncludes(tagWithId(page, "id_username"), `value="${username}"`);
  }
  assertEquals(answers, [[400, true], [400, true]]);
  assertEquals(client.jar.get("sessionid"), undefined);
});

Deno.test("a username longer than any account's gets the same answer, not a 500", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  for (const username of ["a".repeat(3000), "é".repeat(1500), "\uFDFA".repeat(150)]) {
    const response = await client.submit("/log_in/", { username, password: PASSWORD });
    assertEquals(response.status, 400);
    assertStringIncludes(await response.text(), BAD_CREDENTIALS);
  }
});

Deno.test("after logging in, a local next is followed and any other next goes home", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  const cases: [string, string][] = [
    ["/chat/lobby/?x=1", "/chat/lobby/?x=1"],
    ["/chat/café/", "/chat/caf%C3%A9/"],
    ["https://evil.com/", "/"],
    ["//evil.com", "/"],
    ["/\\evil.com", "/"],
    ["\\\\evil.com", "/"],
    ["javascript:alert(1)", "/"],
    ["/\t/evil.com", "/"],
    // Dot segments that resolve to a scheme-relative "//host".
    ["/.//evil.com/", "/"],
    ["/a/..//evil.com/", "/"],
    ["/%2e//evil.com/", "/"],
    ["/a/../b/", "/b/"],
    ["", "/"],
  ];
  for (const [next, expected] of cases) {
    const response = await client.submit("/log_in/", { username: "ada", password: PASSWORD, next });
    assertEquals(response.headers.get("location"), expected, `next=${next}`);
  }
});

Deno.test("the log-in page carries a safe next into its form and drops an unsafe one", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const safe = await (await client.get("/log_in/?next=/chat/lobby/")).text();
  assertStringIncludes(safe, `<input type="hidden" name="next" value="/chat/lobby/">`);
  const unsafe = await (await client.get("/log_in/?next=//evil.com")).text();
  assertFalse(unsafe.includes(`name="next"`));
  const dotted = await (await client.get("/log_in/?next=/.//evil.com/")).text();
  assertFalse(dotted.includes(`name="next"`));
});

Deno.test("logging in replaces any session id the browser had before", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  await client.logIn("ada", PASSWORD);
  const first = client.jar.get("sessionid")!;
  const firstCsrf = client.jar.get("csrftoken")!;
  await client.logIn("ada", PASSWORD);
  const second = client.jar.get("sessionid")!;
  assert(first !== second);
  assert(client.jar.get("csrftoken") !== firstCsrf, "the CSRF secret is rotated at login");
  const { sessions } = server.app.services;
  assertEquals(await sessions.get(first), null, "the earlier id is dead");
  assertEquals((await sessions.get(second))?.username, "ada");
});

Deno.test("logging out ends the session and expires the cookie", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  await client.logIn("ada", PASSWORD);
  const sessionId = client.jar.get("sessionid")!;
  const response = await client.logOut();
  assertEquals([response.status, response.headers.get("location")], [302, "/log_in/"]);
  const cookie = setCookie(response, "sessionid");
  assertEquals([cookie.value, cookie.attributes.get("max-age")], ["", "0"]);
  assertEquals(client.jar.get("sessionid"), undefined);
  assertEquals(await server.app.services.sessions.get(sessionId), null);
  // Even a client that kept the old cookie is anonymous now.
  const stale = new WebClient(server.url);
  stale.jar.set("sessionid", sessionId);
  const page = await (await stale.get("/chat/")).text();
  assertStringIncludes(page, `<a href="/log_in/">Log in</a>`);
  assertFalse(page.includes("Log out"));
});

Deno.test("log out is a POST: a GET is not allowed", async () => {
  await using server = await startTestServer();
  const response = await new WebClient(server.url).get("/log_out/");
  await response.body?.cancel();
  assertEquals(response.status, 405);
});

Deno.test("cookies are Secure over https and behind a trusted proxy that says https", async () => {
  for (
    const [trustProxy, url, forwarded, secure] of [
      [false, "https://chat.example/log_in/", null, true],
      [false, "http://chat.example/log_in/", "https", false],
      [true, "http://chat.example/log_in/", "https", true],
      [true, "http://chat.example/log_in/", "http", false],
    ] as const
  ) {
    await using server = await startTestServer({ trustProxy });
    const headers: Record<string, string> = forwarded ? { "x-forwarded-proto": forwarded } : {};
    const response = await server.app.handle(new Request(url, { headers }));
    await response.body?.cancel();
    const csrf = setCookie(response, "csrftoken");
    assertEquals(csrf.attributes.has("secure"), secure, `${url} ${forwarded} trust=${trustProxy}`);
    assertEquals(csrf.attributes.get("samesite"), "Lax");
  }
});

Deno.test("the session cookie is Secure when logging in over https", async () => {
  await using server = await startTestServer();
  await new WebClient(server.url).signUp("ada", PASSWORD);
  const origin = "https://chat.example";
  const page = await server.app.handle(new Request(`${origin}/log_in/`));
  const csrf = setCookie(page, "csrftoken").value;
  const token = (await page.text()).match(/name="csrfmiddlewaretoken" value="([^"]+)"/)![1];
  const response = await server.app.handle(
    new Request(`${origin}/log_in/`, {
      method: "POST",
      headers: {
        origin,
        cookie: `csrftoken=${csrf}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        csrfmiddlewaretoken: token,
        username: "ada",
        password: PASSWORD,
      }),
    }),
  );
  assertEquals(response.status, 302);
  assertEquals(setCookie(response, "sessionid").attributes.get("secure"), true);
});

Deno.test("accounts survive a server restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-test-" });
  {
    await using server = await startTestServer({ dataDir });
    await new WebClient(server.url).signUp("ada", PASSWORD);
  }
  await using server = await startTestServer({ dataDir });
  const client = new WebClient(server.url);
  await client.logIn("ada", PASSWORD);
  assert(client.jar.get("sessionid"));
});
