import { assertEquals, assertMatch, assertThrows } from "@std/assert";
import { formatFrame, parseClientArgs, roomSocketUrl } from "../../cli/chat_client.ts";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";

Deno.test("the terminal client encodes Unicode room names in the socket URL", () => {
  assertEquals(
    roomSocketUrl("http://127.0.0.1:8000", "café au lait"),
    "ws://127.0.0.1:8000/ws/chat/caf%C3%A9%20au%20lait/",
  );
  assertEquals(
    roomSocketUrl("https://chat.example", "東京"),
    "wss://chat.example/ws/chat/%E6%9D%B1%E4%BA%AC/",
  );
});

Deno.test("the terminal client explains its usage when the room is missing", () => {
  assertThrows(() => parseClientArgs([]), Error, "Usage: deno task client <room>");
  assertEquals(parseClientArgs(["lobby", "--url", "http://h:1"]), {
    room: "lobby",
    url: "http://h:1",
  });
});

Deno.test("the terminal client prints author and time, and errors plainly", () => {
  assertMatch(
    formatFrame({ message: "hi", author: "ada", time: "2026-01-01T10:05:00Z" }),
    /^\[\d\d:\d\d\] ada: hi$/,
  );
  assertEquals(formatFrame({ type: "error", error: "Message is empty" }), "! Message is empty");
});

Deno.test("the terminal client chats both ways and exits cleanly at end of input", async () => {
  await using server = await startTestServer();
  const browser = await TestSocket.open(server.wsUrl(`/ws/chat/${encodeURIComponent("café")}/`));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/chat_client.ts", "café", "--url", server.url],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("hello from the terminal\n"));
  const frame = await browser.nextMatching((f) => f.message === "hello from the terminal", 15_000);
  assertEquals(frame.author, "Anonymous");
  browser.sendJson({ message: "hello from the browser" });
  const printed = await readUntil(child.stdout, "Anonymous: hello from the browser");
  assertMatch(printed, /\[\d\d:\d\d\] Anonymous: hello from the browser/);
  await writer.close();
  const { code } = await child.status;
  await child.stderr.cancel();
  assertEquals(code, 0);
  await browser.close();
});

async function readUntil(stream: ReadableStream<Uint8Array>, needle: string): Promise<string> {
  let text = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!text.includes(needle)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Output ended before "${needle}": ${text}`);
      text += value;
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}
