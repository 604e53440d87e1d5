/**
 * `deno task token <username>`: a token made from the command line, on the store the running
 * server uses, opens a socket as that user, and `--revoke-all` closes it; a name with no account
 * is a clear error.
 */
import { assertEquals, assertMatch, assertRejects, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { MAX_TOKENS_PER_USER } from "../../mod.ts";

async function tokenTask(args: string[], dataDir: string) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "token", ...args],
    env: { DATA_DIR: dataDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

Deno.test("deno task token prints a token that opens a socket as the user", async () => {
  await using server = await startTestServer();
  await new WebClient(server.url).signUp("ada", "quiet river stone");
  const made = await tokenTask(["ADA"], server.config.dataDir);
  assertEquals(made.code, 0, made.stderr);
  assertMatch(made.stdout, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}\n$/, "the token alone on stdout");
  assertStringIncludes(made.stderr, 'A token for "ada", valid until');
  const token = made.stdout.trim();
  const socket = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), {
    headers: { authorization: `Bearer ${token}` },
  });
  socket.sendJson({ message: "from the terminal" });
  assertEquals((await socket.nextMatching((f) => f.message === "from the terminal")).author, "ada");

  const revoked = await tokenTask(["ada", "--revoke-all"], server.config.dataDir);
  assertEquals(revoked.code, 0, revoked.stderr);
  assertStringIncludes(revoked.stderr, 'Revoked 1 token of "ada"');
  assertStringIncludes(revoked.stderr, "closes the sockets open with them within 2 seconds");
  // Another process: the server learns of the revoke from the store, and closes the socket.
  assertEquals(await socket.closedWithin(), { code: 4001, reason: "Token revoked" });
  const url = server.wsUrl("/ws/chat/lobby/");
  assertEquals(await handshakeStatus(url, { authorization: `Bearer ${token}` }), 403);
});

Deno.test("deno task token for a name with no account fails with a clear message", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-token-" });
  try {
    const unknown = await tokenTask(["nobody"], dataDir);
    assertEquals(unknown.code, 1);
    assertEquals(unknown.stdout, "");
    assertStringIncludes(unknown.stderr, `No user named "nobody" in the data directory`);
    const usage = await tokenTask([], dataDir);
    assertEquals(usage.code, 2);
    assertStringIncludes(usage.stderr, "Usage: deno task token <username>");
    const help = await tokenTask(["--help"], dataDir);
    assertEquals(help.code, 0);
    assertStringIncludes(help.stdout, "Usage: deno task token <username>");
    // A mistyped DATA_DIR is said to be missing, and is not made.
    const typo = `${dataDir}/typo/nested`;
    const missing = await tokenTask(["nobody"], typo);
    assertEquals(missing.code, 1);
    assertStringIncludes(missing.stderr, `No data directory at ${JSON.stringify(typo)}`);
    await assertRejects(() => Deno.stat(`${dataDir}/typo`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task token for a user holding the most tokens allowed says so, without a stack", async () => {
  await using server = await startTestServer();
  await new WebClient(server.url).signUp("ada", "quiet river stone");
  for (let n = 0; n < MAX_TOKENS_PER_USER; n++) await server.app.services.tokens.create("ada");
  const refused = await tokenTask(["ada"], server.config.dataDir);
  assertEquals(refused.code, 1);
  assertEquals(refused.stdout, "");
  assertStringIncludes(refused.stderr, `At most ${MAX_TOKENS_PER_USER} live access tokens`);
  assertStringIncludes(refused.stderr, "deno task token ada --revoke-all");
  assertEquals(refused.stderr.includes("    at "), false, refused.stderr);
});
