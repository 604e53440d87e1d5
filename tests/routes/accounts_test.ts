/** Sign-up: the form, the rules a username and a password must follow, the new account. */
import { assert, assertEquals, assertFalse, assertMatch, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { ACCOUNT_EVENTS_GROUP } from "../../auth/users.ts";
import type { LayerEvent } from "../../layers/layer.ts";

const PASSWORD = "quiet river stone";

/** The opening tag of the element with `id`. */
function tagWithId(page: string, id: string): string {
  const match = page.match(new RegExp(`<[a-z]+\\s[^>]*\\bid="${id}"[^>]*>`));
  if (match === null) throw new Error(`No element with id "${id}"`);
  return match[0];
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

Deno.test("of two sign-ups at once with names that look alike, the other is told its name looks taken", async () => {
  await using server = await startTestServer();
  const [first, second] = [new WebClient(server.url), new WebClient(server.url)];
  const answers = await Promise.all(
    [[first, "carol"], [second, "\u0441arol"]].map(async ([client, username]) => {
      const response = await (client as WebClient).submit("/sign_up/", {
        username: username as string,
        password1: PASSWORD,
        password2: PASSWORD,
      });
      return { status: response.status, text: await response.text() };
    }),
  );
  const refused = answers.filter((answer) => answer.status === 400);
  assertEquals(refused.length, 1, answers.map((answer) => answer.status).join());
  assertStringIncludes(refused[0].text, "This username looks like one that already exists.");
  assertEquals((await server.app.services.users.usernames()).length, 1);
});

/** Signs up `first`, then `second`: refused with 400 and `message`, and `first` alone is made. */
async function secondRefused(first: string, second: string, message: string): Promise<void> {
  await using server = await startTestServer();
  const client = new WebClient(server.url);
  await client.signUp(first, PASSWORD);
  const response = await client.submit("/sign_up/", {
    username: second,
    password1: PASSWORD,
    password2: PASSWORD,
  });
  assertEquals(response.status, 400);
  assertStringIncludes(await response.text(), message);
  assertEquals(await server.app.services.users.usernames(), [first]);
}

Deno.test("a sign-up refused for a look another sign-up holds, its account not made yet, is told so", async () => {
  await using server = await startTestServer();
  // Another process's sign-up of "carol", between its hold and its account.
  await server.app.services.store.set(["user_lookalikes", "carol"], {
    username: "carol",
    at: Date.now(),
  });
  const response = await new WebClient(server.url).submit("/sign_up/", {
    username: "\u0441arol",
    password1: PASSWORD,
    password2: PASSWORD,
  });
  assertEquals(response.status, 400);
  assertStringIncludes(await response.text(), "This username looks like one that already exists.");
});

Deno.test("a Latin username is refused when an account that looks like it came first", async () => {
  // Whoever takes "сarol" (a Cyrillic "с") first keeps the real "carol" from her name's look.
  await secondRefused("\u0441arol", "carol", "This username looks like one that already exists.");
});

Deno.test("a username taken in another case is refused at sign-up", async () => {
  await secondRefused("Ada", "aDA", "A user with that username already exists.");
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

Deno.test("an anonymous page offers Log in and Sign up", async () => {
  await using server = await startTestServer();
  const page = await (await new WebClient(server.url).get("/chat/")).text();
  assertStringIncludes(page, `<a href="/log_in/">Log in</a>`);
  assertStringIncludes(page, `<a href="/sign_up/">Sign up</a>`);
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
