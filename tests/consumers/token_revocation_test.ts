/**
 * Revoking a user's access tokens closes the sockets open with them (4001, "Token revoked"),
 * whether the user revokes on the tokens page or an operator runs `deno task token --revoke-all`
 * in another process; other users' token sockets and the user's browser sockets stay open; a
 * socket whose handshake overlapped the revoke is refused; and one whose close was lost (a
 * layer gap) closes when the layer says so.
 */
import { assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { echoAnswers, handshakeStatus, TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import type { Consumer } from "../../server/consumer.ts";
import { serveRouteWith } from "../_support/serve_consumer.ts";
import { LAYER_GAP } from "../../layers/layer.ts";
import { createServices, openBackends, tokenGroup } from "../../mod.ts";
import { runTokenCommand } from "../../cli/token.ts";

const PASSWORD = "quiet river stone";
const REVOKED = { code: 4001, reason: "Token revoked" };

/** A socket on the echo route opened with `token`. */
async function withToken(server: TestServer, token: string): Promise<TestSocket> {
  return await TestSocket.open(server.wsUrl("/ws/echo/"), {
    headers: { authorization: `Bearer ${token}` },
  });
}

Deno.test("revoking on the tokens page closes the user's token sockets with 4001, no others", async () => {
  await using server = await startTestServer();
  const ada = await WebClient.signedIn(server.url, "ada", PASSWORD);
  await WebClient.signedIn(server.url, "bob", PASSWORD);
  const tokens = server.app.services.tokens;
  const adaLaptop = await withToken(server, (await tokens.create("ada")).token);
  const adaScript = await withToken(server, (await tokens.create("ada")).token);
  const bobScript = await withToken(server, (await tokens.create("bob")).token);
  const adaBrowser = await TestSocket.open(server.wsUrl("/ws/echo/"), {
    headers: ada.socketHeaders(),
  });
  const revoked = await ada.submit("/account/tokens/", {}, { action: "/account/tokens/revoke/" });
  await revoked.body?.cancel();
  assertEquals(await adaLaptop.closedWithin(), REVOKED);
  assertEquals(await adaScript.closedWithin(), REVOKED);
  assertEquals(await echoAnswers(bobScript), true, "another user's token socket stays open");
  assertEquals(await echoAnswers(adaBrowser), true, "the user's session socket stays open");
  await Promise.all([bobScript.close(), adaBrowser.close()]);
});

Deno.test("deno task token --revoke-all, another process on the memory layer, closes the user's token sockets", async () => {
  await using server = await startTestServer();
  await WebClient.signedIn(server.url, "ada", PASSWORD);
  await WebClient.signedIn(server.url, "bob", PASSWORD);
  const tokens = server.app.services.tokens;
  const adaScript = await withToken(server, (await tokens.create("ada")).token);
  const bobScript = await withToken(server, (await tokens.create("bob")).token);
  // Its own backends on the server's DATA_DIR: its layer reaches no socket of the server's.
  const code = await runTokenCommand({ username: "ada", revokeAll: true, config: server.config });
  assertEquals(code, 0);
  // A token made after the revoke is not one of those revoked.
  const adaNew = await withToken(server, (await tokens.create("ada")).token);
  assertEquals(await adaScript.closedWithin(), REVOKED);
  assertEquals(await echoAnswers(adaNew), true, "a token made after the revoke keeps its socket");
  assertEquals(await echoAnswers(bobScript), true, "another user's token socket stays open");
  await Promise.all([adaNew.close(), bobScript.close()]);
});

Deno.test("a revoke from another process closes its sockets however many revokes follow it", async () => {
  await using server = await startTestServer();
  await WebClient.signedIn(server.url, "ada", PASSWORD);
  const tokens = server.app.services.tokens;
  const adaScript = await withToken(server, (await tokens.create("ada")).token);
  const others = Array.from({ length: 600 }, (_, i) => `user${i}`);
  for (const name of others) await tokens.create(name);
  // A maintenance script's own services on the server's DATA_DIR, as `deno task token` opens
  // them: ada's revoke, then 600 more, faster than the server checks.
  const backends = await openBackends(server.config, { holdDataDir: false });
  try {
    const scriptTokens = createServices(server.config, backends).tokens;
    for (const name of ["ada", ...others]) await scriptTokens.revokeAll(name);
  } finally {
    await backends.close();
  }
  assertEquals(await adaScript.closedWithin(), REVOKED);
});

Deno.test("a socket still connecting when its token is revoked is refused, not left open as the user", async () => {
  await using server = await startTestServer();
  await WebClient.signedIn(server.url, "ada", PASSWORD);
  const { token } = await server.app.services.tokens.create("ada");
  const entered = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const disconnected: number[] = [];
  const consumer: Consumer = () => ({
    async connect() {
      entered.resolve();
      await gate.promise; // the revoke runs now, before the socket is in its token group
    },
    disconnect: (code) => void disconnected.push(code),
  });
  await using route = serveRouteWith(server.app.services, consumer);
  const status = handshakeStatus(route.wsUrl, { authorization: `Bearer ${token}` });
  await entered.promise;
  // Revoked without a close sent to the group: the socket's own check must see it.
  assertEquals(await server.app.services.tokens.revokeAll("ada"), 1);
  gate.resolve();
  assertEquals(await status, 403);
  assertEquals([disconnected, route.live.size], [[4001], 0]);
});

Deno.test("a token socket whose revoke's close was lost closes when the layer reports a gap", async () => {
  await using server = await startTestServer();
  await WebClient.signedIn(server.url, "ada", PASSWORD);
  const { services } = server.app;
  const issued = await services.tokens.create("ada");
  const kept = await services.tokens.create("ada");
  const revokedSocket = await withToken(server, issued.token);
  const keptSocket = await withToken(server, kept.token);
  // As a revoke whose close never arrived and whose stamp no check read (a Redis subscription down meanwhile).
  await services.store.delete(["tokens", "ada", issued.tokenId]);
  await services.layer.groupSend(await tokenGroup("ada"), { type: LAYER_GAP });
  assertEquals(await revokedSocket.closedWithin(), REVOKED);
  assertEquals(await echoAnswers(keptSocket), true, "a token still live keeps its socket");
  await keptSocket.close();
});
