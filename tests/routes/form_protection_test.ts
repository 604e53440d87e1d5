/** The account forms' protections: CSRF tokens, Origin checks, encodings, and rate limits. */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";

const PASSWORD = "quiet river stone";

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
  // An empty Content-Type is said to be none; a huge one is not sent back whole.
  for (
    const [contentType, said] of [["", "not a body without a Content-Type"], [
      `text/${"x".repeat(40_000)}`,
      "(40005 characters)",
    ]]
  ) {
    const odd = await fetch(server.url + "/log_in/", {
      method: "POST",
      headers: { cookie: client.jar.header()!, origin: server.url, "content-type": contentType },
      body: `csrfmiddlewaretoken=${token}&username=ada`,
      redirect: "manual",
    });
    const text = await odd.text();
    assertEquals(odd.status, 415);
    assertStringIncludes(text, said);
    assert(text.length < 5000, `${text.length} characters sent back`);
  }
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
