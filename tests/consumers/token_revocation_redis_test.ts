/**
 * On the Redis layer, where no server reads the store's revocation stamp, the revoke's own
 * close reaches the token sockets: from the tokens page, and from `deno task token
 * --revoke-all` in another process, whose layer reaches every server.
 */
import { assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { runTokenCommand } from "../../cli/token.ts";

const PASSWORD = "quiet river stone";
const REVOKED = { code: 4001, reason: "Token revoked" };

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

async function redisServer(): Promise<TestServer> {
  return await startTestServer({
    layer: "redis",
    redisUrl: redis!.url,
    redisPrefix: uniquePrefix("revoke"),
  });
}

async function withToken(server: TestServer, username: string): Promise<TestSocket> {
  const { token } = await server.app.services.tokens.create(username);
  return await TestSocket.open(server.wsUrl("/ws/echo/"), {
    headers: { authorization: `Bearer ${token}` },
  });
}

Deno.test({
  name: "on Redis, revoking on the tokens page closes the user's token sockets",
  ignore: !available,
  fn: async () => {
    await using server = await redisServer();
    const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
    const script = await withToken(server, "ada");
    const page = await ada.submit("/account/tokens/", {}, { action: "/account/tokens/revoke/" });
    await page.body?.cancel();
    assertEquals(await script.closedWithin(), REVOKED);
  },
});

Deno.test({
  name: "on Redis, deno task token --revoke-all in another process closes the user's token sockets",
  ignore: !available,
  fn: async () => {
    await using server = await redisServer();
    await WebClient.signedIn(server.url, "ada", PASSWORD);
    const script = await withToken(server, "ada");
    const code = await runTokenCommand({ username: "ADA", revokeAll: true, config: server.config });
    assertEquals(code, 0);
    assertEquals(await script.closedWithin(), REVOKED);
  },
});
