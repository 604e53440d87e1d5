/**
 * `deno task changepassword <username>`: sets a user's password on the store the server uses,
 * checked with the sign-up rules, and ends the user's sessions; without a terminal it reads the
 * password from stdin; at a terminal it asks twice, up to three times, as Django's does.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { echoAnswers, TestSocket } from "../_support/socket.ts";
import { testConfig } from "../_support/server.ts";
import {
  type ChangePasswordCommand,
  parseChangePasswordArgs,
  runChangePassword,
} from "../../cli/changepassword.ts";
import type { TerminalIo } from "../../cli/_terminal_io.ts";
import { createServices, openBackends } from "../../mod.ts";

const PASSWORD = "quiet river stone";
const NEW_PASSWORD = "amber lantern field";
const FAST_HASHING = { PASSWORD_ITERATIONS: "1000", ALLOW_WEAK_PASSWORD_HASHING: "true" };

async function changepassword(args: string[], dataDir: string, stdin: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "changepassword", ...args],
    env: { DATA_DIR: dataDir, LOG_LEVEL: "silent", ...FAST_HASHING },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const { code, stderr } = await child.output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

async function logsIn(base: string, username: string, password: string): Promise<boolean> {
  const response = await new WebClient(base).submit("/log_in/", { username, password });
  await response.body?.cancel();
  return response.status === 302;
}

async function tokensPageStatus(client: WebClient): Promise<number> {
  const response = await client.get("/account/tokens/");
  await response.body?.cancel();
  return response.status;
}

Deno.test("changepassword beside a running server changes the password and ends the user's sessions", async () => {
  await using server = await startTestServer();
  const laptop = new WebClient(server.url);
  await laptop.signUp("ada", PASSWORD);
  await laptop.logIn("ada", PASSWORD);
  const bob = new WebClient(server.url);
  await bob.signUp("bob", PASSWORD);
  await bob.logIn("bob", PASSWORD);
  const changed = await changepassword(["Ada"], server.config.dataDir, `${NEW_PASSWORD}\n`);
  assertEquals(changed.code, 0, changed.stderr);
  assertStringIncludes(changed.stderr, 'Password changed successfully for user "ada".');
  assertStringIncludes(changed.stderr, "Ended 1 session");
  assertStringIncludes(changed.stderr, "closes their open WebSockets within 2 seconds");
  assertEquals(await tokensPageStatus(laptop), 302, "the user's session is logged out");
  assertEquals(await tokensPageStatus(bob), 200, "another user's is not");
  assertEquals(await logsIn(server.url, "ada", PASSWORD), false);
  assertEquals(await logsIn(server.url, "ada", NEW_PASSWORD), true);
});

Deno.test("changepassword, another process on the memory layer, closes the ended sessions' sockets", async () => {
  await using server = await startTestServer();
  const laptop = await WebClient.signedIn(server.url, "ada", PASSWORD);
  const phone = await WebClient.signedIn(server.url, "ada", PASSWORD, { signUp: false });
  const bob = await WebClient.signedIn(server.url, "bob", PASSWORD);
  const open = (client: WebClient) =>
    TestSocket.open(server.wsUrl("/ws/echo/"), { headers: client.socketHeaders() });
  const [laptopTab, laptopOtherTab, phoneTab, bobTab] = await Promise.all(
    [laptop, laptop, phone, bob].map(open),
  );
  const { token: secret } = await server.app.services.tokens.create("ada");
  const token = await TestSocket.open(server.wsUrl("/ws/echo/"), {
    headers: { authorization: `Bearer ${secret}` },
  });
  // Its own backends on the server's DATA_DIR: its layer reaches no socket of the server's.
  const io = terminal([NEW_PASSWORD, NEW_PASSWORD]);
  assertEquals(await runChangePassword({ username: "ada", config: server.config }, io), 0);
  const loggedOut = { code: 4001, reason: "Logged out: the password changed" };
  assertEquals(await laptopTab.closedWithin(), loggedOut);
  assertEquals(await laptopOtherTab.closedWithin(), loggedOut);
  assertEquals(await phoneTab.closedWithin(), loggedOut);
  assertEquals(await echoAnswers(bobTab), true, "another user's socket stays open");
  assertEquals(
    await echoAnswers(token),
    true,
    "the user's token socket stays open: tokens are kept",
  );
  // A session begun after the change is not one of those ended.
  const fresh = await open(
    await WebClient.signedIn(server.url, "ada", NEW_PASSWORD, { signUp: false }),
  );
  assertEquals(await echoAnswers(fresh), true);
  await Promise.all([bobTab.close(), token.close(), fresh.close()]);
});

Deno.test("changepassword refuses an unknown user, a password the rules refuse, and no username", async () => {
  await using server = await startTestServer();
  await new WebClient(server.url).signUp("ada", PASSWORD);
  const nobody = await changepassword(["zed"], server.config.dataDir, `${NEW_PASSWORD}\n`);
  assertEquals(nobody.code, 1);
  assertStringIncludes(nobody.stderr, 'User "zed" does not exist.');
  const weak = await changepassword(["ada"], server.config.dataDir, "ada12345\n");
  assertEquals(weak.code, 1);
  assertStringIncludes(weak.stderr, "Error: The password is too similar to the username.");
  assertEquals(await logsIn(server.url, "ada", PASSWORD), true, "the password is unchanged");
  const usage = await changepassword([], server.config.dataDir, "");
  assertEquals(usage.code, 2);
  assertStringIncludes(usage.stderr, "Usage: deno task changepassword <username>");
});

Deno.test("changepassword with a mistyped DATA_DIR says so, and makes no store there", async () => {
  await using server = await startTestServer();
  const typo = `${server.config.dataDir}-typo`;
  const refused = await changepassword(["ada"], typo, `${NEW_PASSWORD}\n`);
  assertEquals(refused.code, 1);
  assertStringIncludes(refused.stderr, `No data directory at ${JSON.stringify(typo)}`);
  await assertRejects(() => Deno.stat(typo), Deno.errors.NotFound);
});

/** A terminal that answers the secret prompts from `answers`, and records what is said. */
function terminal(answers: (string | null)[]): TerminalIo & { said: string[] } {
  const said: string[] = [];
  return {
    interactive: true,
    said,
    ask: () => Promise.resolve(null),
    askSecret: () => Promise.resolve(answers.shift() ?? null),
    readStdin: () => Promise.resolve(""),
    say: (line) => said.push(line),
  };
}

async function withAda(run: (command: ChangePasswordCommand) => Promise<void>): Promise<void> {
  const config = await testConfig();
  try {
    const backends = await openBackends(config, { holdDataDir: false });
    await createServices(config, backends).users.create("ada", PASSWORD);
    await backends.close();
    await run(parseChangePasswordArgs(["ada", "--data-dir", config.dataDir], FAST_HASHING));
  } finally {
    await Deno.remove(config.dataDir, { recursive: true });
  }
}

Deno.test("at a terminal, changepassword asks again until the two passwords match", async () => {
  await withAda(async (command) => {
    const io = terminal([NEW_PASSWORD, "something else", NEW_PASSWORD, NEW_PASSWORD]);
    assertEquals(await runChangePassword(command, io), 0, io.said.join("\n"));
    assertStringIncludes(io.said.join("\n"), "Error: The two password fields didn’t match.");
  });
});

Deno.test("at a terminal, changepassword gives up after three attempts", async () => {
  await withAda(async (command) => {
    const io = terminal(["short", "short", "1234", "1234", "password", "password"]);
    assertEquals(await runChangePassword(command, io), 1);
    assertStringIncludes(io.said.join("\n"), 'Aborting password change for user "ada"');
  });
});
