/**
 * Tutorials' own client scripts against a real server. The group chat client of Wu Peiqi's
 * Django WebSocket notes (`tests/fixtures/tutorials/group_chat_client.py`, verbatim) runs with
 * only its URL's host and port replaced by the test server's, as a reader would edit it.
 * Needs Debian's python3 with python3-websocket: skipped with a reason when missing, a failure
 * under `CI=true`.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { PYTHON, pythonUnavailable, WEBSOCKET_CLIENT } from "../_support/python.ts";

const GROUP_CHAT_CLIENT = new URL("../fixtures/tutorials/group_chat_client.py", import.meta.url);
/** The one URL in the script, as the notes wrote it. */
const NOTES_URL = "ws://127.0.0.1:8000/ws/123/";

const missing = await pythonUnavailable(WEBSOCKET_CLIENT, "Tutorial client test");
if (missing !== null) console.log(`Skipping the tutorial client tests: ${missing}`);

/** The script, its URL pointed at `server`, in a temporary file; `await using` removes it. */
async function groupChatClient(server: TestServer): Promise<{ path: string } & AsyncDisposable> {
  const script = await Deno.readTextFile(GROUP_CHAT_CLIENT);
  assertEquals(script.split(NOTES_URL).length, 2, "the script names its URL once");
  const path = await Deno.makeTempFile({ prefix: "group_chat_client-", suffix: ".py" });
  await Deno.writeTextFile(path, script.replace(NOTES_URL, server.wsUrl("/ws/123/")));
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

/** Runs the interactive script with `lines` typed in. */
async function run(
  path: string,
  lines: string[],
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(PYTHON, {
    args: [path],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    // The prompts and replies are Chinese: whatever the locale, Python speaks UTF-8.
    env: { PYTHONIOENCODING: "utf-8" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(lines.map((line) => `${line}\n`).join("")));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

Deno.test({
  name: "the notes' Python client chats in group 123, and its group hears it",
  ignore: missing !== null,
  async fn() {
    await using server = await startTestServer();
    await using client = await groupChatClient(server);
    const member = await TestSocket.open(server.wsUrl("/ws/123/"));
    const elsewhere = await TestSocket.open(server.wsUrl("/ws/456/"));
    const { code, out, err } = await run(client.path, ["hello", "你好", "quit"]);
    assertEquals(code, 0, err);
    // One reply per line typed: the group relays the sender's own text back to it.
    assertEquals(
      out,
      "获取连接状态:  101\n" +
        "请输入内容: 接收结果:  hello\n" +
        "请输入内容: 接收结果:  你好\n" +
        "请输入内容: ",
    );
    assertEquals(await member.next(), "hello");
    assertEquals(await member.next(), "你好");
    assert(await elsewhere.staysQuiet(), "another group heard group 123");
    await member.close();
    await elsewhere.close();
  },
});

Deno.test({
  name: "the notes' Python client typing 关闭 is disconnected by the server",
  ignore: missing !== null,
  async fn() {
    await using server = await startTestServer();
    await using client = await groupChatClient(server);
    const member = await TestSocket.open(server.wsUrl("/ws/123/"));
    const { code, out, err } = await run(client.path, ["关闭", "quit"]);
    // websocket-client answers the server's close frame and `recv()` returns "" (1.x), or
    // raises WebSocketConnectionClosedException (other versions): either way, no reply.
    if (code === 0) {
      assertEquals(out, "获取连接状态:  101\n请输入内容: 接收结果:  \n请输入内容: ");
    } else {
      assertStringIncludes(err, "WebSocketConnectionClosedException");
    }
    assert(await member.staysQuiet(), "关闭 was relayed to the group");
    await member.close();
  },
});
