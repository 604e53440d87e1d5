/**
 * Faults survived: Redis restarting under live clients, a server process killed with
 * SIGKILL, a drain on SIGTERM, a quick stop on SIGINT, and Redis missing at start. Each test has its own
 * redis-server on a free port, which it stops and restarts.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { redisAvailability, type RedisServer, startRedisServer } from "../_support/redis.ts";
import { TestSocket } from "../_support/socket.ts";
import { diff, member, presenceSocket, WAIT } from "./_clients.ts";
import { runServerToExit, type ServerProcess, startServerProcess } from "./_process.ts";

const { available } = await redisAvailability({ privateServer: true });

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !available, fn });
}

function serverOn(redis: RedisServer): Promise<ServerProcess> {
  return startServerProcess({ LAYER: "redis", REDIS_URL: redis.url, REDIS_PREFIX: "faults" });
}

test("after a Redis restart messages flow again, with no restart of the server", async () => {
  await using redis = await startRedisServer();
  await using a = await serverOn(redis);
  await using b = await serverOn(redis);
  const ada = await member(a.url, "ada");
  const onA = await TestSocket.open(a.wsUrl("/ws/chat/lobby/"));
  const onB = await TestSocket.open(b.wsUrl("/ws/chat/lobby/"));

  await redis.stop();
  await a.waitForOutput(/Redis connection \(layer commands\) to \S+ lost/, WAIT);
  const page = await fetch(`${a.url}/chat/`);
  await page.body?.cancel();
  assertEquals(page.status, 200, "pages are served while Redis is away");
  // The session lives in Redis too: a signed-in visitor still gets the page, as anonymous.
  const signedIn = await ada.get("/chat/");
  await signedIn.body?.cancel();
  assertEquals(signedIn.status, 200, "a page with a session cookie is served while Redis is away");
  onA.sendJson({ message: "into the void" });
  const refused = await onA.nextMatching((f) => f.type === "error", WAIT);
  assertMatch(String(refused.error), /not sent/i);

  await redis.restart();
  await a.waitForOutput(/Redis connection \(layer subscriber\) to \S+ restored/, WAIT);
  await b.waitForOutput(/Redis connection \(layer subscriber\) to \S+ restored/, WAIT);
  // Reconnection has backoff: keep saying something until the other process hears it.
  let heard: Record<string, unknown> | null = null;
  for (let n = 0; heard === null && n < 30; n++) {
    onA.sendJson({ message: `back ${n}` });
    heard = await onB.nextMatching((f) => String(f.message).startsWith("back"), 500)
      .catch(() => null);
  }
  assert(heard !== null, "no message crossed between the processes after the restart");
  assertEquals(onB.socket.readyState, WebSocket.OPEN, "clients stayed connected throughout");
  assertEquals(await onB.staysQuiet(100), true);
  await onA.close();
  await onB.close();
});

test("a server killed with SIGKILL: its users go Offline for everyone within 30 s", async () => {
  await using redis = await startRedisServer();
  await using a = await serverOn(redis);
  await using b = await serverOn(redis);
  const ada = await member(a.url, "ada");
  const bob = await member(b.url, "bob");
  const watcher = await presenceSocket(b.url, bob);
  await presenceSocket(a.url, ada);
  await watcher.nextMatching(diff("joins", "ada"), WAIT);
  a.signal("SIGKILL");
  await a.status;
  await watcher.nextMatching(diff("leaves", "ada"), 30_000);
  await watcher.close();
});

/**
 * Two servers on one Redis, ada's presence tab and a chat socket on A, bob watching on B; A
 * gets `signal`. Both sockets close with `closeCode`, B hears ada leave within `WAIT` (well
 * before the 15 s expiry that a crash would need), and A exits with 0 having printed `said`.
 */
async function assertStopsCleanly(
  signal: Deno.Signal,
  closeCode: number,
  said: RegExp[],
): Promise<void> {
  await using redis = await startRedisServer();
  await using a = await serverOn(redis);
  await using b = await serverOn(redis);
  const ada = await member(a.url, "ada");
  const watcher = await presenceSocket(b.url, await member(b.url, "bob"));
  const adaTab = await presenceSocket(a.url, ada);
  const chat = await TestSocket.open(a.wsUrl("/ws/chat/lobby/"));
  await watcher.nextMatching(diff("joins", "ada"), WAIT);
  a.signal(signal);
  assertEquals((await chat.closed).code, closeCode);
  assertEquals((await adaTab.closed).code, closeCode);
  await watcher.nextMatching(diff("leaves", "ada"), WAIT);
  const status = await a.status;
  assertEquals(status.code, 0);
  for (const line of said) assertMatch(a.output(), line);
  await watcher.close();
}

// ada does not come back: B took her connection over and ends it with her grace period.
test("SIGTERM drains: sockets close with 1012, users keep their grace, a clean exit", () =>
  assertStopsCleanly("SIGTERM", 1012, [
    /SIGTERM: draining 2 connections over 5 s/,
    /SIGTERM: stopped/,
  ]));

// The leave is announced on the way out.
test(
  "SIGINT closes sockets with 1001 at once, ends presence at once and exits cleanly",
  () => assertStopsCleanly("SIGINT", 1001, [/SIGINT: shutting down/]),
);

test("with LAYER=redis and no Redis the server exits non-zero, naming the URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const url = `redis://127.0.0.1:${port}`;
  const { code, output } = await runServerToExit({ LAYER: "redis", REDIS_URL: url }, 30_000);
  assertNotEquals(code, 0);
  assertMatch(output, new RegExp(`Could not start: Cannot connect to Redis at ${url}`));
});

Deno.test("a damaged Deno KV file stops the start with a line that names it and says what to do", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "damaged-kv-" });
  try {
    const file = `${dataDir}/channels.kv`;
    await Deno.writeTextFile(file, "not a database, but a text file of some length ".repeat(20));
    const { code, output } = await runServerToExit({ DATA_DIR: dataDir });
    assertNotEquals(code, 0);
    assertMatch(output, /Could not start: Deno KV file .*channels\.kv: file is not a database/);
    assertMatch(output, /it is damaged: move it away/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
