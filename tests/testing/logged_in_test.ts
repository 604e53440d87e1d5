/** `loggedInHeaders`: a signed-in user for a communicator, as Django's `force_login`. */
import { assertEquals, assertRejects } from "@std/assert";
import { type Consumer, createApp, socket } from "../../mod.ts";
import { Communicator, createTestServices, loggedInHeaders, testUpgrade } from "../../testing.ts";

const whoAmI: Consumer = (conn) => ({
  connect: () => conn.sendJson({ user: conn.scope.user.username }),
});

Deno.test("loggedInHeaders signs a communicator in, and a login-required route lets it through", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [socket("/ws/private/", whoAmI, { loginRequired: true })],
    services,
    upgrade: testUpgrade,
  });
  try {
    const anonymous = new Communicator(app, "/ws/private/");
    assertEquals((await anonymous.connect()).accepted, false);
    const ada = new Communicator(app, "/ws/private/", {
      headers: await loggedInHeaders(services, "ada"),
    });
    assertEquals((await ada.connect()).accepted, true);
    assertEquals(await ada.receiveJson(), { user: "ada" });
    // The same user again: a second session, the same account.
    const again = new Communicator(app, "/ws/private/", {
      headers: await loggedInHeaders(services, "ada"),
    });
    await again.connect();
    assertEquals(await again.receiveJson(), { user: "ada" });
    await ada.disconnect();
    await again.disconnect();
  } finally {
    await app.close();
  }
});

Deno.test("loggedInHeaders signs in from the app's own site when ALLOWED_HOSTS names it", async () => {
  for (const allowedHosts of [["example.com"], [".example.com", "other.org"], ["*"]]) {
    await using services = await createTestServices({ allowedHosts });
    const app = createApp({
      routes: [socket("/ws/private/", whoAmI, { loginRequired: true })],
      services,
      upgrade: testUpgrade,
    });
    try {
      const ada = new Communicator(app, "/ws/private/", {
        headers: await loggedInHeaders(services, "ada"),
      });
      assertEquals((await ada.connect()).accepted, true, `ALLOWED_HOSTS ${allowedHosts}`);
      assertEquals(await ada.receiveJson(), { user: "ada" });
      await ada.disconnect();
      // Another site's page, given as the origin, is still another site's.
      const elsewhere = new Communicator(app, "/ws/private/", {
        headers: await loggedInHeaders(services, "ada", "http://evil.test"),
      });
      const expected = allowedHosts.includes("*");
      assertEquals((await elsewhere.connect()).accepted, expected, `${allowedHosts}`);
      await elsewhere.disconnect();
    } finally {
      await app.close();
    }
  }
});

Deno.test("loggedInHeaders refuses a name no account can have, rather than sign in nobody", async () => {
  await using services = await createTestServices();
  for (const name of ["", "x".repeat(151)]) {
    await assertRejects(() => loggedInHeaders(services, name), TypeError, "cannot be a username");
  }
  // Names the sign-up form refuses are not made into accounts: a test would pass with a user the
  // app's visitors cannot be. The error names the rule.
  for (const name of ["bad name", "a;b", "a\nb"]) {
    await assertRejects(
      () => loggedInHeaders(services, name),
      TypeError,
      "may contain only letters, numbers, and @/./+/-/_ characters",
    );
    assertEquals(await services.users.find(name), null, `${JSON.stringify(name)} was made`);
  }
  // An account the app's own script made, with a name sign-up refuses, still signs in.
  await services.users.create("bob smith", crypto.randomUUID());
  for (const name of ["ada", "bob smith"]) {
    assertEquals(typeof (await loggedInHeaders(services, name)).cookie, "string", name);
  }
  // Any Origin a test of the Origin check may want, `null` (a sandboxed page) included.
  assertEquals((await loggedInHeaders(services, "ada", "null")).origin, "null");
});
