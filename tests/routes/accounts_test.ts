import { assert, assertEquals, assertFalse, assertMatch, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { parseSetCookie, WebClient } from "../_support/cookie_jar.ts";
import { BAD_CREDENTIALS } from "../../routes/accounts.ts";
import { ACCOUNT_EVENTS_GROUP } from "../../auth/users.ts";
import type { LayerEvent } from "../../layers/layer.ts";

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

Deno.test("the sign-up form has labelled fields, autocomplete hints and a submit button", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const response = await client.get("/sign_up/");
  assertEquals(response.status, 200);
  const page = await response.text();
  assertStringIncludes(tagWithId(page, "id_username"), `autocomplete="username"`);
  assertStringIncludes(tagWithId(page, "id_password1"), `autocomplete="new-password"`);
  assertStringIncludes(tagWithId(page, "id_password2"), `type="password"`);
  for (const id of ["id_username", "id_password1", "id_password2"]) {
    assertStringIncludes(page, `<label for="${id}">`);
  }
  assertMatch(page, /<form method="post" action="\/sign_up\/"/);
  assertStringIncludes(page, `<button type="submit">Sign up</button>`);
  assertMatch(page, /name="csrfmiddlewaretoken" value="[A-Za-z0-9_-]{86}"/);
  assert(client.jar.get("csrftoken"), "the page sets the CSRF cookie");
});

Deno.test("signing up leads to the log-in page; logging in leads home with a session", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const signUp = await client.submit("/sign_up/", {
    username: "ada",
    password1: PASSWORD,
    password2: PASSWORD,
  });
  assertEquals([signUp.status, signUp.headers.get("location")], [302, "/log_in/"]);
  const logIn = await client.submit("/log_in/", { username: "ada", password: PASSWORD });
  assertEquals([logIn.status, logIn.headers.get("location")], [302, "/"]);
  assert(client.jar.get("sessionid"));
  const page = await (await client.get("/chat/")).text();
  assertStringIncludes(page, 'Signed in as <strong dir="auto">ada</strong>');
  assertStringIncludes(page, `<button type="submit">Log out</button>`);
});

Deno.test("spaces around a username are dropped on sign-up and log-in, as Django's forms do", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const signUp = await client.submit("/sign_up/", {
    username: " bea ",
    password1: PASSWORD,
    password2: PASSWORD,
  });
  assertEquals(signUp.status, 302, "a pasted username with spaces was refused");
  const logIn = await client.submit("/log_in/", { username: "bea\t", password: PASSWORD });
  assertEquals([logIn.status, logIn.headers.get("location")], [302, "/"]);
  const page = await (await client.get("/chat/")).text();
  assertStringIncludes(page, 'Signed in as <strong dir="auto">bea</strong>');
});

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

Deno.test("a sign-up with errors shows them beside the fields and keeps the username only", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const response = await client.submit("/sign_up/", {
    username: "ada",
    password1: "ada12345",
    password2: "ada123456",
  });
  assertEquals(response.status, 400);
  const page = await response.text();
  assertStringIncludes(tagWithId(page, "id_username"), `value="ada"`);
  assertStringIncludes(page, `<ul class="form-errors" id="id_password1_errors">`);
  assertStringIncludes(page, "The password is too similar to the username.");
  assertStringIncludes(page, `<ul class="form-errors" id="id_password2_errors">`);
  assertStringIncludes(page, "The two password fields didn’t match.");
  assertFalse(page.includes("ada12345"), "a typed password is never sent back");
  assertEquals(await server.app.services.users.usernames(), []);
});

Deno.test("a username that passes for an existing one with Cyrillic or Greek letters is refused at sign-up", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("carol", PASSWORD);
  // A Cyrillic "с", then a Greek alpha and omicron: each shows as "carol" in a room.
  for (const lookalike of ["\u0441arol", "c\u03b1r\u03bfl"]) {
    const response = await client.submit("/sign_up/", {
      username: lookalike,
      password1: PASSWORD,
      password2: PASSWORD,
    });
    assertEquals(response.status, 400, lookalike);
    assertStringIncludes(
      await response.text(),
      "This username looks like one that already exists.",
    );
  }
  // A name of its own in those scripts is anyone's.
  await client.signUp("\u043a\u0430\u0442\u044f", PASSWORD); // катя
  assertEquals(await server.app.services.users.usernames(), ["carol", "\u043a\u0430\u0442\u044f"]);
});

Deno.test("a username taken in another case is refused at sign-up", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("Ada", PASSWORD);
  const response = await client.submit("/sign_up/", {
    username: "aDA",
    password1: PASSWORD,
    password2: PASSWORD,
  });
  assertEquals(response.status, 400);
  assertStringIncludes(await response.text(), "A user with that username already exists.");
  assertEquals(await server.app.services.users.usernames(), ["Ada"]);
});

Deno.test("the names the chat shows for visitors, outside senders and the dice are no account's", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  for (const username of ["Anonymous", "anonymous", "SERVER", "Dice"]) {
    const response = await client.submit("/sign_up/", {
      username,
      password1: PASSWORD,
      password2: PASSWORD,
    });
    assertEquals(response.status, 400, username);
    assertStringIncludes(await response.text(), "This username is reserved.");
  }
  assertEquals(await server.app.services.users.usernames(), []);
});

Deno.test("markup in a username is refused, and shown back escaped", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const name = "<img src=x onerror=alert(1)>";
  const response = await client.submit("/sign_up/", {
    username: name,
    password1: PASSWORD,
    password2: PASSWORD,
  });
  assertEquals(response.status, 400);
  const page = await response.text();
  assertStringIncludes(page, "Enter a valid username.");
  assertFalse(page.includes(name));
  assertStringIncludes(page, "&lt;img src=x onerror=alert(1)&gt;");
});

Deno.test("a new account is announced to the accounts group", async () => {
  await using server = await startTestServer();
  const { layer } = server.app.services;
  const heard: LayerEvent[] = [];
  const channel = layer.newChannel((event) => heard.push(event) > 0);
  await layer.groupAdd(ACCOUNT_EVENTS_GROUP, channel);
  await new WebClient(server.url).signUp("Émile", PASSWORD);
  assertEquals(heard, [{ type: "account.created", username: "Émile" }]);
  await layer.closeChannel(channel);
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

Deno.test("every form POST without a valid CSRF token is refused with 403", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  await client.logIn("ada", PASSWORD);
  const fields = { username: "ada", password: PASSWORD, password1: PASSWORD, password2: PASSWORD };
  for (const path of ["/sign_up/", "/log_in/", "/log_out/"]) {
    const missing = await client.post(path, fields);
    assertEquals(missing.status, 403, `${path} without a token`);
    assertStringIncludes(await missing.text(), "CSRF token missing.");
    const wrong = await client.post(path, { ...fields, csrfmiddlewaretoken: "A".repeat(86) });
    assertEquals(wrong.status, 403, `${path} with a wrong token`);
    assertStringIncludes(await wrong.text(), "CSRF token incorrect.");
  }
  assert(await server.app.services.sessions.get(client.jar.get("sessionid")!), "still logged in");
});

Deno.test("a form in another encoding is answered 415, not taken for a missing CSRF token", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  const token = await client.csrfToken("/log_in/");
  const multipart = new FormData();
  for (const [name, value] of Object.entries({ csrfmiddlewaretoken: token, username: "ada" })) {
    multipart.set(name, value);
  }
  multipart.set("password", PASSWORD);
  const response = await fetch(server.url + "/log_in/", {
    method: "POST",
    headers: { cookie: client.jar.header()!, origin: server.url },
    body: multipart,
    redirect: "manual",
  });
  assertEquals(response.status, 415);
  assertStringIncludes(await response.text(), "not multipart/form-data");
});

Deno.test("a form posted from another site is refused even with a stolen token", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const token = await client.csrfToken("/sign_up/");
  const response = await client.post("/sign_up/", {
    csrfmiddlewaretoken: token,
    username: "ada",
    password1: PASSWORD,
    password2: PASSWORD,
  }, { headers: { origin: "https://evil.example" } });
  assertEquals(response.status, 403);
  assertStringIncludes(await response.text(), "Origin checking failed");
  assertEquals(await server.app.services.users.usernames(), []);
});

Deno.test("repeated failed logins for one username are answered 429 with Retry-After", async () => {
  await using server = await startTestServer({
    loginThrottle: { perUsername: 3, perAddress: 100, windowSeconds: 900 },
  });
  const client = new WebClient(server.url);
  await client.signUp("ada", PASSWORD);
  for (let i = 0; i < 3; i++) {
    const response = await client.submit("/log_in/", { username: "ada", password: `guess ${i}` });
    await response.body?.cancel();
    assertEquals(response.status, 400);
  }
  const blocked = await client.submit("/log_in/", { username: "ada", password: PASSWORD });
  assertEquals(blocked.status, 429, "even the right password waits");
  const retryAfter = Number(blocked.headers.get("retry-after"));
  assert(retryAfter > 0 && retryAfter <= 900, `Retry-After: ${retryAfter}`);
  assertStringIncludes(await blocked.text(), "Too many failed login attempts.");
  assertEquals(client.jar.get("sessionid"), undefined);
});

Deno.test("repeated failed logins from one address are answered 429", async () => {
  await using server = await startTestServer({
    loginThrottle: { perUsername: 100, perAddress: 3, windowSeconds: 60 },
  });
  const client = new WebClient(server.url);
  for (let i = 0; i < 3; i++) {
    const response = await client.submit("/log_in/", { username: `user${i}`, password: PASSWORD });
    await response.body?.cancel();
  }
  const blocked = await client.submit("/log_in/", { username: "user9", password: PASSWORD });
  await blocked.body?.cancel();
  assertEquals(blocked.status, 429);
  const retryAfter = Number(blocked.headers.get("retry-after"));
  assert(retryAfter > 0 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
});

Deno.test("sign-ups from one address beyond the limit are answered 429, and no account is made", async () => {
  await using server = await startTestServer({
    signUpThrottle: { perAddress: 3, windowSeconds: 3600 },
  });
  const client = new WebClient(server.url);
  for (let i = 0; i < 3; i++) await client.signUp(`user${i}`, PASSWORD);
  const fields = { username: "user9", password1: PASSWORD, password2: PASSWORD };
  const blocked = await client.submit("/sign_up/", fields);
  assertEquals(blocked.status, 429);
  assertStringIncludes(await blocked.text(), "Too many sign-ups from your address");
  const retryAfter = Number(blocked.headers.get("retry-after"));
  assert(retryAfter > 0 && retryAfter <= 3600, `Retry-After: ${retryAfter}`);
  assertEquals(await server.app.services.users.find("user9"), null);
  // A form with errors costs no hash, and does not count.
  const wrong = await client.submit("/sign_up/", { ...fields, password2: "other" });
  assertEquals(wrong.status, 400);
  await wrong.body?.cancel();
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

Deno.test("an anonymous page offers Log in and Sign up", async () => {
  await using server = await startTestServer();
  const page = await (await new WebClient(server.url).get("/chat/")).text();
  assertStringIncludes(page, `<a href="/log_in/">Log in</a>`);
  assertStringIncludes(page, `<a href="/sign_up/">Sign up</a>`);
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

Deno.test("a password holding a NUL is refused at sign-up, and no password with one logs in", async () => {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  const withNul = `${PASSWORD}\u0000`;
  const refused = await client.submit("/sign_up/", {
    username: "ada",
    password1: withNul,
    password2: withNul,
  });
  assertEquals(refused.status, 400);
  assertStringIncludes(await refused.text(), "Null characters are not allowed.");
  assertEquals(await server.app.services.users.find("ada"), null, "stored all the same");
  // An account made without it: the same password and a NUL is not its password.
  await server.app.services.users.create("grace", PASSWORD);
  const logIn = await client.submit("/log_in/", { username: "grace", password: withNul });
  assertEquals(logIn.status, 400);
  await logIn.body?.cancel();
  assertFalse(client.jar.get("sessionid"));
});
