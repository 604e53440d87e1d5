import { assertEquals, assertRejects } from "@std/assert";
import { connectRedis, redactUrl } from "../../layers/redis_connection.ts";

Deno.test("connecting to a closed port fails at once, naming the URL", async () => {
  const port = closedPort();
  await assertRejects(
    () => connectRedis(`redis://127.0.0.1:${port}`, { name: "test", connectTimeoutMs: 1000 }),
    Error,
    `Cannot connect to Redis at redis://127.0.0.1:${port}`,
  );
});

Deno.test("connecting to a server that never answers fails in bounded time, not a hang", async () => {
  // Accepts the connection and then says nothing, as a firewall or a wrong service might.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    await assertRejects(
      () => connectRedis(`redis://127.0.0.1:${port}`, { name: "test", connectTimeoutMs: 300 }),
      Error,
      `Cannot connect to Redis at redis://127.0.0.1:${port}`,
    );
  } finally {
    listener.close();
    for (const conn of accepted) conn.close();
    await accepting.catch(() => {});
  }
});

Deno.test("a password in a Redis URL is never shown", () => {
  assertEquals(
    redactUrl("redis://user:secret@db.example:6379/0"),
    "redis://user:***@db.example:6379/0",
  );
  assertEquals(redactUrl("redis://db.example:6379"), "redis://db.example:6379");
});

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
