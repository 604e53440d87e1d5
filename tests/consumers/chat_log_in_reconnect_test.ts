/**
 * A chat page open anonymously while its browser signs in, in another tab: its socket (the client
 * module's, which follows offsets) is told to reconnect, and comes back signed in, rather than
 * writing as "Anonymous" until the page is reloaded. The tutorial's client, which never
 * reconnects, and other browsers' pages are left open.
 */
import { assert, assertEquals } from "@std/assert";
import { startTestServer, type TestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { createTestApp } from "../_support/test_app.ts";
import { InMemoryLayer } from "../../mod.ts";
import { Communicator } from "../../testing.ts";
import { newCsrfSecret } from "../../auth/csrf.ts";

const PASSWORD = "quiet river stone";
const FOLLOWING = "/ws/chat/lobby/?stream=1&presence=1";

/** A browser that has drawn the chat page (which sets its CSRF cookie), signed in as nobody. */
async function anonymousBrowser(server: TestServer): Promise<WebClient> {
  const browser = new WebClient(server.url);
  await (await browser.get("/chat/lobby/")).body?.cancel();
  assert(browser.jar.get("csrftoken"), "the chat page sets the CSRF cookie");
  return browser;
}

/** Opens `path` with `browser`'s cookies; resolves once the room said whom it writes as. */
async function openAs(
  server: TestServer,
  browser: WebClient,
  path: string,
): Promise<{ socket: TestSocket; you: unknown }> {
  const socket = await TestSocket.open(server.wsUrl(path), { headers: browser.socketHeaders() });
  const state = await socket.nextMatching((frame) => frame.type === "presence.state");
  return { socket, you: state.you };
}

Deno.test("a log-in reconnects the browser's anonymous chat pages, signed in; nothing else closes", async () => {
  await using server = await startTestServer();
  await server.app.services.users.create("ada", PASSWORD);
  const browser = await anonymousBrowser(server);
  const page = await openAs(server, browser, FOLLOWING);
  assertEquals(page.you, "Anonymous");
  // The Channels tutorial's client never reconnects: a close would end its chat.
  const tutorial = await TestSocket.open(server.wsUrl("/ws/chat/lobby/"), {
    headers: browser.socketHeaders(),
  });
  const elsewhere = await openAs(server, await anonymousBrowser(server), FOLLOWING);

  await browser.logIn("ada", PASSWORD);
  assertEquals(await page.socket.closedWithin(), { code: 4002, reason: "Logged in" });
  const back = await openAs(server, browser, FOLLOWING);
  assertEquals(back.you, "ada", "the page came back signed in");

  back.socket.sendJson({ message: "signed in now" });
  const heard = (socket: TestSocket) =>
    socket.nextMatching((frame) => frame.message === "signed in now");
  const [tutorialHeard, elsewhereHeard] = await Promise.all([
    heard(tutorial),
    heard(elsewhere.socket),
  ]);
  assertEquals(tutorialHeard.author, "ada");
  assertEquals(elsewhereHeard.author, "ada");
  assertEquals(tutorial.socket.readyState, WebSocket.OPEN, "the tutorial's socket was closed");
  assertEquals(elsewhere.socket.socket.readyState, WebSocket.OPEN, "another browser's was closed");
  for (const socket of [tutorial, elsewhere.socket, back.socket]) await socket.close();
});

Deno.test("a log-out's reconnected anonymous page is told again at the next log-in", async () => {
  await using server = await startTestServer();
  await server.app.services.users.create("ada", PASSWORD);
  const browser = await anonymousBrowser(server);
  await browser.logIn("ada", PASSWORD);
  const page = await openAs(server, browser, FOLLOWING);
  assertEquals(page.you, "ada");

  await browser.logOut();
  assertEquals((await page.socket.closedWithin()).code, 4001);
  const anonymous = await openAs(server, browser, FOLLOWING);
  assertEquals(anonymous.you, "Anonymous");

  await browser.logIn("ada", PASSWORD);
  assertEquals(await anonymous.socket.closedWithin(), { code: 4002, reason: "Logged in" });
  const back = await openAs(server, browser, FOLLOWING);
  assertEquals(back.you, "ada");
  await back.socket.close();
});

Deno.test("a layer that cannot take the browser's group refuses the socket 503, and keeps nothing", async () => {
  using captured = new CapturedLog();
  const layer = new InMemoryLayer();
  const groupAdd = layer.groupAdd.bind(layer);
  layer.groupAdd = (group, channel) =>
    group.startsWith("browser.")
      ? Promise.reject(new Error("the layer is away"))
      : groupAdd(group, channel);
  await using app = await createTestApp({ logLevel: "warn" }, { layer });
  const headers = { origin: "http://localhost", cookie: `csrftoken=${newCsrfSecret()}` };
  // The room's and the browser's (the room's presence listens on through its grace).
  const groups = () =>
    layer.groupSizes?.(100, (group) => group !== "chat.lobby" && !group.startsWith("browser."));
  const refused = new Communicator(app, FOLLOWING, { headers });
  const answer = await refused.connect();
  assertEquals([answer.accepted, answer.status], [false, 503]);
  await captured.waitFor(/WARN Could not join the browser's group for \/ws\/chat\/lobby\//);
  assertEquals(groups(), [], "the refused socket left a group behind");
  assertEquals(app.live.size, 0);

  // The tutorial's client joins no such group: it connects.
  const tutorial = new Communicator(app, "/ws/chat/lobby/", { headers });
  assert((await tutorial.connect()).accepted);
  await tutorial.disconnect();
});
