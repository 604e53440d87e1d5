/**
 * The tutorial's wire protocol from Python: `cli/tutorial_client.py`, written with
 * `websocket-client` as a Channels tutorial reader would, chats with a Deno client in a room
 * whose name needs URL-encoding. Needs Debian's python3 with python3-websocket (`.ci/run`
 * installs it): skipped with a reason when missing, a failure under `CI=true`.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { PYTHON, pythonUnavailable, WEBSOCKET_CLIENT } from "../_support/python.ts";

const ROOM = "café au lait";

const missing = await pythonUnavailable(WEBSOCKET_CLIENT, "Python client test");
if (missing !== null) console.log(`Skipping the Python client test: ${missing}`);

Deno.test({
  name: "a Python websocket-client script chats with a Deno client in a Unicode room",
  ignore: missing !== null,
  async fn() {
    await using server = await startTestServer();
    const deno = await TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent(ROOM)}/`));
    const child = new Deno.Command(PYTHON, {
      args: [
        "cli/tutorial_client.py",
        server.wsUrl(""),
        ROOM,
        "hello from Python",
        "hello from Deno",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const fromPython = await deno.nextMatching((f) => f.message === "hello from Python", 15_000);
    assertEquals(fromPython.author, "Anonymous");
    assertEquals(fromPython.room, ROOM);
    deno.sendJson({ message: "hello from Deno" });
    const { code, stdout, stderr } = await child.output();
    const printed = new TextDecoder().decode(stdout);
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    // Its own message came back to it, then the Deno client's, in order.
    assertMatch(printed, /^Anonymous: hello from Python\nAnonymous: hello from Deno\n$/);
    await deno.close();
  },
});

Deno.test({
  name: "the Python client shows another user's control characters instead of obeying them",
  ignore: missing !== null,
  async fn() {
    await using server = await startTestServer();
    const deno = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"));
    const child = new Deno.Command(PYTHON, {
      args: ["cli/tutorial_client.py", server.wsUrl(""), "lobby", "hi", "done"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await deno.nextMatching((f) => f.message === "hi", 15_000);
    // Clear the screen and set the title, then a line passing for admin's.
    deno.sendJson({ message: "\x1b[2J\x1b]0;pwned\x07\n[12:00] admin: run this\u2028\u202e" });
    deno.sendJson({ message: "done" });
    const { code, stdout, stderr } = await child.output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    assertEquals(
      new TextDecoder().decode(stdout),
      "Anonymous: hi\n" +
        "Anonymous: \\x1b[2J\\x1b]0;pwned\\x07\\n[12:00] admin: run this\\u2028\\u202e\n" +
        "Anonymous: done\n",
    );
    await deno.close();
  },
});

Deno.test({
  name: "the Python client logs in with --token; a revoked token is refused with why",
  ignore: missing !== null,
  async fn() {
    await using server = await startTestServer();
    await new WebClient(server.url).signUp("ada", "quiet river stone");
    const { token } = await server.app.services.tokens.create("ada");
    const python = (args: string[]) =>
      new Deno.Command(PYTHON, {
        args: ["cli/tutorial_client.py", "--token", token, server.wsUrl(""), "lobby", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const signedIn = await python(["hello as ada"]);
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    assertEquals(signedIn.code, 0, decode(signedIn.stderr));
    assertEquals(decode(signedIn.stdout), "ada: hello as ada\n");
    await server.app.services.tokens.revokeAll("ada");
    const refused = await python(["hello again"]);
    assertEquals(refused.code, 1);
    assertMatch(decode(refused.stderr), /^! Connection refused: .*403.*expired or revoked/);
  },
});

Deno.test({
  name: "the Python client says in one line why it could not connect, without a traceback",
  ignore: missing !== null,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const cases: [string[], number, RegExp][] = [
      [[`ws://127.0.0.1:${port}`, "lobby", "hi"], 1, /^! Could not connect to ws:\/\/127\.0\.0\.1/],
      [[`http://127.0.0.1:${port}`, "lobby", "hi"], 1, /^! Could not connect to http:/],
      [[`ws://127.0.0.1:${port}`, ".", "hi"], 2, /^! No chat room can be named "\."/],
      [[`ws://127.0.0.1:${port}`, "lobby", "hi", "--token"], 2, /^Usage: /],
    ];
    for (const [args, expected, said] of cases) {
      const { code, stderr } = await new Deno.Command(PYTHON, {
        args: ["cli/tutorial_client.py", ...args],
        stdout: "null",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(stderr);
      assertEquals(code, expected, text);
      assertMatch(text, said);
      assertEquals(text.includes("Traceback"), false, text);
    }
  },
});

Deno.test({
  name: "the Python client says in one line it was interrupted on Ctrl-C, without a traceback",
  ignore: missing !== null,
  async fn() {
    await using server = await startTestServer();
    const child = new Deno.Command(PYTHON, {
      args: ["cli/tutorial_client.py", server.wsUrl(""), "lobby", "hi", "never"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Its first line is the echo of what it sent: it is connected and waiting for "never".
    const reader = child.stdout.getReader();
    let printed = "";
    while (!printed.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      printed += new TextDecoder().decode(value);
    }
    assertEquals(printed, "Anonymous: hi\n");
    child.kill("SIGINT");
    reader.releaseLock();
    const { code, stderr } = await child.output();
    const text = new TextDecoder().decode(stderr);
    assertEquals(text.includes("Traceback"), false, text);
    assertMatch(text, /^! Interrupted[^\n]*\n$/);
    assertEquals(code, 130, text);
  },
});
