/**
 * Runs the site in this process (the default layer), serves a page, a static file and a chat
 * message, then prints how much V8's heap grows when Node's `process` is first read: a
 * server that never set it up grows by the size of Node's `process` (about 0.75 MiB here),
 * one that did grows by nothing. With `--control`, `process` is read before the site starts.
 *
 * Run: `deno run --allow-all --unstable-kv --unstable-net --v8-flags=--expose-gc
 * tests/_support/node_process_probe.ts [--control]`; prints `{"grewBytes": n}`.
 */
import { startTestServer } from "./server.ts";

const gc = (globalThis as unknown as { gc(): void }).gc;
const readProcess = () => (globalThis as { process?: { platform?: string } }).process?.platform;

if (Deno.args.includes("--control")) readProcess();
{
  await using server = await startTestServer();
  for (const path of ["/chat/lobby/", "/static/chat.js"]) {
    const response = await fetch(server.httpUrl(path));
    await response.body?.cancel();
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
  }
  const socket = new WebSocket(server.wsUrl("/ws/chat/lobby/"));
  const echoed = new Promise<void>((resolve, reject) => {
    socket.onmessage = (message) => {
      if (JSON.parse(message.data).message === "probe") resolve();
    };
    socket.onerror = () => reject(new Error("The chat socket failed"));
  });
  socket.onopen = () => socket.send(JSON.stringify({ message: "probe" }));
  await echoed;
  const closed = new Promise((resolve) => socket.onclose = resolve);
  socket.close();
  await closed;
}
gc();
gc();
const before = Deno.memoryUsage().heapUsed;
readProcess();
gc();
gc();
console.log(JSON.stringify({ grewBytes: Deno.memoryUsage().heapUsed - before }));
