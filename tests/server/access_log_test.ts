/** The access log, Daphne's format: one line per HTTP request, with the reason for each refusal. */
import {
  assert,
  assertEquals,
  assertMatch,
  assertObjectMatch,
  assertStringIncludes,
} from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { handshakeStatus, TestSocket } from "../_support/socket.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { createTestApp } from "../_support/test_app.ts";
import { Communicator } from "../../testing.ts";
import { log } from "../../telemetry/log.ts";

Deno.test("each HTTP request logs one line with method, path, status, time and client", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  await (await fetch(server.httpUrl("/chat/?from=test"))).body?.cancel();
  await (await fetch(server.httpUrl("/nowhere/"))).body?.cancel();
  await captured.waitFor(/^HTTP GET \/chat\/\?from=test 200 \[\d+\.\d{3}, 127\.0\.0\.1:\d+\]$/);
  await captured.waitFor(/^HTTP GET \/nowhere\/ 404 \[\d+\.\d{3}, 127\.0\.0\.1:\d+\]$/);
  assert(captured.lines.filter((line) => line.includes("/chat/?from=test")).length === 1);
});

Deno.test("a plain GET or HEAD to a socket's route is one HTTP line with its 426 and why, no WebSocket line", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  for (const method of ["GET", "HEAD"]) {
    const response = await fetch(server.httpUrl("/ws/echo/"), { method });
    await response.body?.cancel();
    assertEquals(response.status, 426);
  }
  for (const method of ["GET", "HEAD"]) {
    await captured.waitFor(
      new RegExp(
        `^HTTP ${method} \\/ws\\/echo\\/ 426 \\[\\d+\\.\\d{3}, 127\\.0\\.0\\.1:\\d+\\] ` +
          `\\(Not a WebSocket upgrade: connect with a WebSocket client\\)$`,
      ),
    );
  }
  assertEquals(captured.lines.filter((line) => line.startsWith("WebSocket ")), []);
});

Deno.test("a method a path does not take gets 405 with Allow, and its line says why", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const response = await fetch(server.httpUrl("/chat/"), { method: "DELETE" });
  await response.body?.cancel();
  assertEquals(response.status, 405);
  const allowed = response.headers.get("allow")!;
  assertMatch(allowed, /GET/);
  const line = await captured.waitFor(/^HTTP DELETE \/chat\/ 405 /);
  assertMatch(line, new RegExp(`\\(the method is not allowed here: ${allowed} only\\)$`));
});

Deno.test("at level warn the access lines are not written", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "warn" });
  await (await fetch(server.httpUrl("/chat/"))).body?.cancel();
  const socket = await TestSocket.open(server.wsUrl("/ws/echo/"));
  await socket.close();
  await server.shutdown();
  const access = captured.lines.filter((line) => /^(HTTP|WebSocket) /.test(line));
  assert(access.length === 0, access.join("\n"));
});

Deno.test("a Host header that is no host gets 400, one log line, and no token in it", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const { port } = new URL(server.httpUrl("/"));
  // Deno joins the Host to the path as text: these would route (and log) another path.
  const hosts = [
    "a b",
    "[::1",
    "<script>",
    "127.0.0.1/static",
    "127.0.0.1/ws/echo/?",
    "x#y",
    "u@h",
  ];
  for (const host of hosts) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    const request = `GET /chat/?token=SECRET-VALUE&x=1 HTTP/1.1\r\nHost: ${host}\r\n` +
      "Connection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(request));
    const answer = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    assertMatch(answer, /^HTTP\/1\.1 400 /, `Host: ${host}`);
    assertMatch(answer, /The Host header is not a valid host/);
  }
  const refused =
    /^HTTP GET \/chat\/\?token=\[redacted\]&x=1 400 \[\d+\.\d{3}, 127\.0\.0\.1:\d+\] \(the Host header is not a valid host\)$/;
  await captured.waitFor(refused);
  // One line each, with the path the client sent.
  const lines = captured.lines.filter((line) => line.startsWith("HTTP "));
  assertEquals(lines.filter((line) => refused.test(line)).length, hosts.length, lines.join("\n"));
  assert(!captured.lines.some((line) => line.includes("SECRET-VALUE")), "a token was logged");
  assert(!captured.lines.some((line) => /TypeError|Invalid URL/.test(line)), "a stack was logged");
  // The server serves the next request as before.
  const fine = await fetch(server.httpUrl("/chat/"));
  await fine.body?.cancel();
  assert(fine.status === 200);
});

Deno.test("a refused form's access line says why, and the reason is not sent to the client", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({
    logLevel: "info",
    loginThrottle: { perUsername: 1, perAddress: 100, windowSeconds: 60 },
  });
  const noToken = await fetch(server.httpUrl("/log_in/"), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: server.url },
    body: "username=ada&password=x",
  });
  await noToken.body?.cancel();
  assertEquals(noToken.status, 403);
  assertEquals(noToken.headers.get("x-channels-log-reason"), null);
  await captured.waitFor(
    /^HTTP POST \/log_in\/ 403 \[\d+\.\d{3}, 127\.0\.0\.1:\d+\] \(CSRF verification failed: CSRF /,
  );
  const client = new WebClient(server.url);
  for (let i = 0; i < 2; i++) {
    const answer = await client.submit("/log_in/", { username: "ada", password: "wrong one" });
    await answer.body?.cancel();
  }
  await captured.waitFor(
    /^HTTP POST \/log_in\/ 429 \[\d+\.\d{3}, 127\.0\.0\.1:\d+\] \(too many failed log-ins\)$/,
  );
});

Deno.test("every refusal's access line says why: log-in, /_send/, /metrics, a bad path", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({
    logLevel: "info",
    sendToken: "send-secret-for-tests",
    metricsToken: "metrics-secret-for-tests",
  });
  const client = new WebClient(server.url);
  await (await client.submit("/log_in/", { username: "ada", password: "" })).body?.cancel();
  await (await client.submit("/log_in/", { username: "ada", password: "not it" })).body?.cancel();
  for (const token of [undefined, "wrong"]) {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const sent = await fetch(server.httpUrl("/_send/"), { method: "POST", headers, body: "{}" });
    await sent.body?.cancel();
    const scraped = await fetch(server.httpUrl("/metrics"), { headers });
    await scraped.body?.cancel();
  }
  await (await fetch(server.httpUrl("/ws/chat/%ff/"))).body?.cancel();
  const signUp = { username: "Anonymous", password1: "quiet river stone", password2: "x" };
  await (await client.submit("/sign_up/", signUp)).body?.cancel();
  const tokens = new WebClient(server.url); // signed out, with a form from the page
  await (await tokens.submit("/log_in/", {}, { action: "/account/tokens/new/" })).body?.cancel();
  const line = (method: string, path: string, status: number, reason: string) =>
    new RegExp(`^HTTP ${method} ${path} ${status} \\[\\d+\\.\\d{3}, [\\d.:]+\\] \\(${reason}`);
  await captured.waitFor(line("POST", "/log_in/", 400, "username or password missing\\)"));
  await captured.waitFor(line("POST", "/log_in/", 400, "wrong credentials\\)"));
  await captured.waitFor(line("POST", "/_send/", 401, "Authorization: Bearer <SEND_TOKEN>"));
  await captured.waitFor(line("POST", "/_send/", 401, "The token is not valid\\)"));
  await captured.waitFor(line("GET", "/metrics", 401, "no bearer token\\)"));
  await captured.waitFor(line("GET", "/metrics", 401, "wrong token\\)"));
  await captured.waitFor(line("GET", "/ws/chat/%ff/", 400, "Malformed"));
  await captured.waitFor(line("POST", "/sign_up/", 400, "This username is reserved\\.\\)"));
  await captured.waitFor(line("POST", "/account/tokens/new/", 403, "not logged in\\)"));
  // No secret is in any line.
  assert(
    captured.lines.every((text) => !text.includes("secret-for-tests") && !text.includes("not it")),
  );
});

Deno.test("a request refused while the server drains logs its line with the reason", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("info");
  await app.drain(0);
  const page = await app.handle(new Request("http://localhost/chat/?from=lb"));
  await page.body?.cancel();
  assertEquals([page.status, page.headers.get("retry-after")], [503, "1"]);
  // With the headers of every answer.
  assertEquals(page.headers.get("x-content-type-options"), "nosniff");
  assertEquals(page.headers.get("content-type"), "text/plain; charset=utf-8");
  const socket = new Communicator(app, "/ws/chat/lobby/");
  assertObjectMatch(await socket.connect(), { accepted: false, status: 503 });
  await captured.waitFor(/^HTTP GET \/chat\/\?from=lb 503 \[0\.000, .*\] \(the server is draining/);
  await captured.waitFor(/^WebSocket REJECT \/ws\/chat\/lobby\/ \[.*\] \(the server is draining/);
});

// Its backends close under it: a page served now could fail on a closed store.
Deno.test("a request that arrives while the app closes (Ctrl-C) is refused 503 with its reason", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("info");
  const closing = app.close();
  const page = await app.handle(new Request("http://localhost/chat/"));
  assertEquals([page.status, page.headers.get("retry-after")], [503, "1"]);
  assertEquals(await page.text(), "Service shutting down; try again in a moment.\n");
  await captured.waitFor(/^HTTP GET \/chat\/ 503 \[0\.000, .*\] \(the server is shutting down\)$/);
  await closing;
});

Deno.test("a path or query of 60 KB is cut in its line, with its length said", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("info");
  const long = "a".repeat(60_000);
  for (const target of [`/${long}`, `/chat/?q=${long}`]) {
    await (await app.handle(new Request(`http://localhost${target}`))).body?.cancel();
  }
  const lines = captured.lines.filter((line) => line.startsWith("HTTP GET /"));
  assertEquals(lines.length, 2, lines.join("\n"));
  for (const line of lines) {
    assert(line.length < 1_000, `a line of ${line.length} characters`);
    assertMatch(line, /a… \(600\d\d characters\) (414|200) /);
  }
});

Deno.test("a request with a bad Host while the server drains is refused for its Host, its path as sent", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp();
  log.setLevel("info");
  await app.drain(0);
  // As Deno makes it: the Host header and the target joined as text.
  const request = new Request("http://a/b/chat/?token=x", { headers: { host: "a/b" } });
  const answer = await app.handle(request);
  await answer.body?.cancel();
  assertEquals(answer.status, 400);
  await captured.waitFor(
    /^HTTP GET \/chat\/\?token=\[redacted\] 400 \[[\d.]+, .*\] \(the Host header is not a valid host\)$/,
  );
  assert(!captured.lines.some((line) => line.includes("/b/chat/")), captured.lines.join("\n"));
});

Deno.test("wrong send tokens write one access line each and one warning a minute, not one each", async () => {
  using captured = new CapturedLog();
  await using app = await createTestApp({ sendToken: "right-token-for-tests" });
  log.setLevel("info");
  // Each spelling of the path (`/%5Fsend/`, `/_%73end/`) reaches the same route, and its warning.
  const spellings = ["/_send/", "/%5Fsend/", "/_%73end/", "/%5f%73%65%6e%64/", "/_send/"];
  const send = (n: number) =>
    new Request(`http://localhost${spellings[n]}`, {
      method: "POST",
      headers: { authorization: "Bearer wrong-token", "content-type": "application/json" },
      body: JSON.stringify({ group: "chat.lobby", event: { type: "chat.message", message: "hi" } }),
    });
  for (let n = 0; n < 5; n++) {
    const answer = await app.handle(send(n));
    await answer.body?.cancel();
    assertEquals(answer.status, 401);
  }
  const access = captured.lines.filter((line) =>
    /^HTTP POST \/\S+\/ 401 .*\(The token is not valid\)$/.test(line)
  );
  const warnings = captured.lines.filter((line) =>
    /WARN Refused \S+ from .*: wrong token/.test(line)
  );
  assertEquals([access.length, warnings.length], [5, 1], captured.lines.join("\n"));
  // The warning is what a guesser shows at LOG_LEVEL=warn; it never holds the token.
  assert(!captured.lines.some((line) => line.includes("wrong-token")));
});

Deno.test("a chat room page refused for its room name says why in its line, as its socket does", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  for (const prefix of ["/chat/", "/tutorial/chat/"]) {
    const response = await fetch(server.httpUrl(`${prefix}${"r".repeat(101)}/`));
    await response.body?.cancel();
    assertEquals(response.status, 404);
  }
  await captured.waitFor(/^HTTP GET \/chat\/r+\/ 404 .*\(A room name is 1 to 100 characters\)$/);
  await captured.waitFor(
    /^HTTP GET \/tutorial\/chat\/r+\/ 404 .*\(A room name is 1 to 100 characters\)$/,
  );
  await (await fetch(server.httpUrl("/tutorial/chat/a%3Fb/"))).body?.cancel();
  await captured.waitFor(
    /^HTTP GET \/tutorial\/chat\/a%3Fb\/ 404 .*\(The Channels tutorial's page/,
  );
});

Deno.test("a handshake to a socket's path without its slash gets 404 naming the route, not a redirect no client follows", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  assertEquals(await handshakeStatus(server.wsUrl("/ws/chat/lobby?since=3")), 404);
  await captured.waitFor(
    /^HTTP GET \/ws\/chat\/lobby\?since=3 404 .*\(no WebSocket route here; \/ws\/chat\/lobby\/ has one: a WebSocket does not follow a redirect\)$/,
  );
  // The slash is named only where it leads to a socket: `/chat/` is a page.
  assertEquals(await handshakeStatus(server.wsUrl("/chat")), 404);
  const pageLine = await captured.waitFor(/^HTTP GET \/chat 404 /);
  assert(pageLine.endsWith("(no WebSocket route here)"), pageLine);
  // A page's address still redirects, as Django's APPEND_SLASH does.
  const page = await fetch(server.httpUrl("/chat/lobby"), { redirect: "manual" });
  await page.body?.cancel();
  assertEquals([page.status, page.headers.get("location")], [301, "/chat/lobby/"]);
});

Deno.test("a refused form's line quotes its Origin on one line, and shows a Referer's origin, never its query", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  const client = new WebClient(server.url);
  const token = await client.csrfToken("/log_in/");
  const fields = { csrfmiddlewaretoken: token, username: "ada", password: "x" };
  const forged = "http://x.example\x85HTTP GET /admin/ 200 [0.001, 10.0.0.1:4444] (ok";
  await (await client.post("/log_in/", fields, { headers: { origin: forged } })).body?.cancel();
  const origin = await captured.waitFor(/^HTTP POST \/log_in\/ 403 .*Origin checking failed/);
  assertEquals(
    origin.split("(CSRF verification failed: ")[1],
    String.raw`Origin checking failed - "http://x.example\u0085HTTP GET /admin/ 200 [0.001, ` +
      String.raw`10.0.0.1:4444] (ok" does not match any trusted origins.)`,
  );
  const long = `http://${"a".repeat(300)}.example`;
  await (await client.post("/log_in/", fields, { headers: { origin: long } })).body?.cancel();
  await captured.waitFor(/Origin checking failed - "http:\/\/a+"… \(315 characters\) does not/);
  const secret = "eyJ1c2VybmFtZSI6ImFkYSJ9.c2lnbmF0dXJl";
  const referer = `http://elsewhere.example:8080/chat/?token=${secret}`;
  const page = await client.post("/log_in/", fields, { noOrigin: true, headers: { referer } });
  const text = await page.text();
  assertEquals(page.status, 403);
  const line = await captured.waitFor(/^HTTP POST \/log_in\/ 403 .*Referer checking failed/);
  assertStringIncludes(line, `Referer checking failed - "http://elsewhere.example:8080" does not`);
  assert(!line.includes("/chat/") && !line.includes(secret), line);
  assert(!text.includes("?token=") && !text.includes(secret), "the page shows the Referer's query");
});
