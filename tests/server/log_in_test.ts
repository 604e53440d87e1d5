/**
 * `logIn`, the framework's Django `login()`, in an app of its own: a new session id with its
 * cookies, and the previous session's sockets told to reconnect (the same user) or logged out
 * (another user).
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { type Consumer, createApp, logIn, page, SESSION_COOKIE, socket } from "../../mod.ts";
import { Communicator, createTestServices, loggedInHeaders, testUpgrade } from "../../testing.ts";

const quiet: Consumer = () => ({});

/** An app whose `POST /log_in/` signs in the name in its body, and a signed-in socket route. */
async function appWithLogIn() {
  const services = await createTestServices();
  for (const username of ["ada", "bob"]) await services.users.create(username, "s3cret-words");
  const logInRoute = page("POST", "/log_in/", async (request, context) => {
    const user = await context.services.users.find(await request.text());
    const cookies = await logIn(request, context, user!);
    cookies.set("location", "/");
    return new Response(null, { status: 302, headers: cookies });
  });
  const app = createApp({
    routes: [logInRoute, socket("/ws/private/", quiet, { loginRequired: true })],
    services,
    upgrade: testUpgrade,
  });
  return { app, services };
}

/** Logs `username` in from a browser whose cookie is `cookie`; the new session cookie. */
async function logInAs(
  app: { handle(request: Request): Promise<Response> },
  username: string,
  cookie: string,
): Promise<{ session: string; csrf: boolean }> {
  const response = await app.handle(
    new Request("http://localhost/log_in/", {
      method: "POST",
      body: username,
      headers: { cookie },
    }),
  );
  assertEquals(response.status, 302);
  const cookies = response.headers.getSetCookie();
  const session = cookies.find((line) => line.startsWith(`${SESSION_COOKIE}=`)) ?? "";
  assert(/; HttpOnly/i.test(session), `the session cookie is HttpOnly: ${session}`);
  const value = session.slice(SESSION_COOKIE.length + 1).split(";")[0];
  return { session: value, csrf: cookies.some((line) => line.startsWith("csrftoken=")) };
}

for (
  const [who, code] of [["the same user", 4002], ["another user", 4001]] as const
) {
  Deno.test(`a log-in as ${who} gives a new session id and closes the old one's sockets with ${code}`, async () => {
    const { app } = await appWithLogIn();
    try {
      const headers = await loggedInHeaders(app.services, "ada");
      const comm = new Communicator(app, "/ws/private/", { headers });
      assert((await comm.connect()).accepted);
      const { session, csrf } = await logInAs(
        app,
        who === "the same user" ? "ada" : "bob",
        headers.cookie,
      );
      assertNotEquals(`${SESSION_COOKIE}=${session}`, headers.cookie);
      assert(csrf, "a new CSRF cookie is set");
      assertEquals(await comm.waitForClose(), code);
      // The old id signs no one in any more; the new one does.
      const old = new Communicator(app, "/ws/private/", { headers });
      assertEquals((await old.connect()).status, 403);
      const renewed = new Communicator(app, "/ws/private/", {
        headers: { ...headers, cookie: `${SESSION_COOKIE}=${session}` },
      });
      assert((await renewed.connect()).accepted);
      await renewed.disconnect();
    } finally {
      await app.close();
    }
  });
}
