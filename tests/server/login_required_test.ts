import { assertEquals } from "@std/assert";
import { createApp, loginRequired, page } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { startTestServer } from "../_support/server.ts";

Deno.test("an anonymous visitor of a login-required page is sent to log in, then back", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [
      page("GET", "/secret/page/", loginRequired((_r, _c, p) => new Response(p.account.username))),
      page(
        "GET",
        "/other/",
        loginRequired(() => new Response("never"), { loginUrl: "/accounts/login/" }),
      ),
    ],
    services,
  });
  const answer = await app.handle(new Request("http://localhost/secret/page/"));
  assertEquals(answer.status, 302);
  assertEquals(answer.headers.get("location"), "/log_in/?next=/secret/page/");
  const other = await app.handle(new Request("http://localhost/other/"));
  assertEquals(other.headers.get("location"), "/accounts/login/?next=/other/");
  await app.close();
});

Deno.test("a log-in URL with a query of its own keeps it, and gets next beside it, as Django merges it", async () => {
  await using services = await createTestServices();
  const guarded = (loginUrl: string) => loginRequired(() => new Response("never"), { loginUrl });
  const app = createApp({
    routes: [
      page("GET", "/a/", guarded("/accounts/login/?lang=en")),
      page("GET", "/b/", guarded("https://sso.example/login?next=/old/&lang=en#form")),
    ],
    services,
  });
  const a = await app.handle(new Request("http://localhost/a/?x=1"));
  assertEquals(a.headers.get("location"), "/accounts/login/?lang=en&next=/a/%3Fx%3D1");
  const b = await app.handle(new Request("http://localhost/b/"));
  assertEquals(b.headers.get("location"), "https://sso.example/login?lang=en&next=/b/#form");
  await app.close();
});

Deno.test("the page's query string comes back after the log-in, as Django's login_required keeps it", async () => {
  await using server = await startTestServer();
  const ada = new WebClient(server.url);
  await ada.signUp("ada", "quiet river stone");
  const sent = await ada.get("/?filter=done&page=2");
  await sent.body?.cancel();
  const login = sent.headers.get("location")!;
  assertEquals(login, "/log_in/?next=/%3Ffilter%3Ddone%26page%3D2");
  const next = new URL(login, server.url).searchParams.get("next")!;
  const back = await ada.submit(login, { username: "ada", password: "quiet river stone", next });
  await back.body?.cancel();
  assertEquals([back.status, back.headers.get("location")], [302, "/?filter=done&page=2"]);
});

Deno.test("an access token in a login-required page's query is not carried into next", async () => {
  await using server = await startTestServer();
  const visitor = new WebClient(server.url);
  const sent = await visitor.get("/?Token=eyJhbGci.c2lnbmF0dXJl&page=2&token=x");
  await sent.body?.cancel();
  assertEquals(sent.headers.get("location"), "/log_in/?next=/%3Fpage%3D2");
  const bare = await visitor.get("/?token=eyJhbGci.c2lnbmF0dXJl");
  await bare.body?.cancel();
  assertEquals(bare.headers.get("location"), "/log_in/?next=/");
});

Deno.test("a signed-in visitor of a login-required page gets the page", async () => {
  await using server = await startTestServer();
  const ada = new WebClient(server.url);
  await ada.signUp("ada", "quiet river stone");
  await ada.logIn("ada", "quiet river stone");
  const response = await ada.get("/");
  assertEquals(response.status, 200);
  await response.body?.cancel();
});
