/**
 * Every file descriptor in use (connections that never finish their headers, here under a low
 * `ulimit -n`) makes Deno's accept loop fail for good. The server stays up, says so, keeps its
 * open sockets, and accepts again once descriptors are free; so does its metrics listener.
 */
import { assert, assertEquals } from "@std/assert";
import { startServerProcess } from "../scale/_process.ts";
import { TestSocket } from "../_support/socket.ts";

const FILE_LIMIT = 256;

Deno.test("a server out of file descriptors stays up, keeps its sockets, and accepts again", async () => {
  await using server = await startServerProcess({ METRICS_ADDRESS: "127.0.0.1:0" }, [], {
    fileLimit: FILE_LIMIT,
  });
  const metricsLine = await server.waitForOutput(/Metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
  const metricsPort = Number(/:(\d+)\/metrics/.exec(metricsLine)![1]);
  const { hostname, port } = new URL(server.url);
  const echo = await TestSocket.open(server.wsUrl("/ws/echo/"));
  echo.send("before");
  assertEquals(await echo.next(), "You said: before");

  // Requests that never finish their headers, until the server cannot take one more; then one
  // more connection to each listener, which its accept cannot take.
  const held: Deno.Conn[] = [];
  const partial = new TextEncoder().encode("GET /chat/ HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n");
  const failed = (listening: number) =>
    server.waitForOutput(new RegExp(`The listener on port ${listening} stopped accepting \\(`));
  try {
    for (let n = 0; n < FILE_LIMIT * 2; n++) {
      const conn = await Deno.connect({ hostname, port: Number(port) }).catch(() => null);
      if (conn === null) break;
      held.push(conn);
      await conn.write(partial).catch(() => {});
    }
    await failed(Number(port));
    const toMetrics = await Deno.connect({ hostname, port: metricsPort }).catch(() => null);
    if (toMetrics !== null) held.push(toMetrics);
    await failed(metricsPort);
  } finally {
    for (const conn of held) conn.close();
  }

  // The server may still hold the closed connections when it first listens again, and fail
  // once more: each new attempt is awaited from its log line, a bounded number of times.
  const servedAgain = async (url: string, listening: number): Promise<Response> => {
    for (let attempt = 1;; attempt++) {
      assert(attempt <= 8, `never accepted again:\n${server.output()}`);
      const again = String.raw`(Listening again on port ${listening}[\s\S]*){${attempt}}`;
      await server.waitForOutput(new RegExp(again));
      const response = await fetch(url).catch(() => null);
      if (response !== null) return response;
    }
  };
  const page = await servedAgain(`${server.url}/chat/`, Number(port));
  await page.body?.cancel();
  assertEquals(page.status, 200);
  const metrics = await servedAgain(`http://${hostname}:${metricsPort}/metrics`, metricsPort);
  await metrics.body?.cancel();
  assertEquals(metrics.status, 200);
  // Still the same process, with its open socket.
  echo.send("after");
  assertEquals(await echo.next(), "You said: after");
  const late = await TestSocket.open(server.wsUrl("/ws/echo/"));
  late.send("new");
  assertEquals(await late.next(), "You said: new");
  assert(!/Uncaught/.test(server.output()), server.output());
  await late.close();
  await echo.close();
});
