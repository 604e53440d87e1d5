/**
 * A store that is away (Redis restarting) while a signed-in user's request comes: a page is
 * served as anonymous with one warning line and no stack; a WebSocket handshake is refused with
 * 503 ("unavailable", to be tried again), not opened as anonymous nor refused as "login
 * required", which would send an operator looking for the wrong fault.
 */
import { assert, assertEquals } from "@std/assert";
import { createApp, page, socket, type Store, type StoreEntry } from "../../mod.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { Communicator, createTestServices, loggedInHeaders, testUpgrade } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";

/** A store whose reads fail as node-redis's do while Redis is away, once `away` is set. */
class OutageStore implements Store {
  away = false;
  constructor(readonly inner: Store) {}
  #check(): void {
    if (this.away) {
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6390"), {
        code: "ECONNREFUSED",
      });
    }
  }
  get<T>(...args: Parameters<Store["get"]>): Promise<T | null> {
    this.#check();
    return this.inner.get<T>(...args);
  }
  set(...args: Parameters<Store["set"]>): Promise<void> {
    this.#check();
    return this.inner.set(...args);
  }
  create(...args: Parameters<Store["create"]>): Promise<boolean> {
    this.#check();
    return this.inner.create(...args);
  }
  replace(...args: Parameters<Store["replace"]>): Promise<boolean> {
    this.#check();
    return this.inner.replace(...args);
  }
  delete(...args: Parameters<Store["delete"]>): Promise<void> {
    this.#check();
    return this.inner.delete(...args);
  }
  writeMany(...args: Parameters<Store["writeMany"]>): Promise<void> {
    this.#check();
    return this.inner.writeMany(...args);
  }
  list<T>(...args: Parameters<Store["list"]>): Promise<StoreEntry<T>[]> {
    this.#check();
    return this.inner.list<T>(...args);
  }
  close(): void {
    this.inner.close();
  }
}

const echo = () => ({ connect: () => true, receive: () => {} });

Deno.test("while the store is away a signed-in visitor's page is anonymous with one warning line, and its socket is refused 503, not 'login required'", async () => {
  using captured = new CapturedLog();
  const store = new OutageStore(await DenoKvStore.open(":memory:"));
  await using services = await createTestServices({ logLevel: "info" }, { store });
  const app = createApp({
    routes: [
      page("GET", "/who/", async (request, context) => {
        const { user } = await context.services.identify(request);
        return new Response(user.username ?? "anon");
      }),
      socket("/ws/private/", echo, { loginRequired: true }),
      socket("/ws/open/", echo),
    ],
    services,
    upgrade: testUpgrade,
  });
  const headers = await loggedInHeaders(services, "ada");
  const { token } = await services.tokens.create("ada");
  const before = await app.handle(new Request("http://localhost/who/", { headers }));
  assertEquals(await before.text(), "ada");

  store.away = true;
  const from = captured.lines.length;
  const during = await app.handle(new Request("http://localhost/who/", { headers }));
  assertEquals([during.status, await during.text()], [200, "anon"]);
  const warnings = captured.lines.slice(from).filter((line) => / WARN /.test(line));
  assertEquals(warnings.length, 1, warnings.join("\n"));
  assert(warnings[0].includes("Session lookup failed, the store is unavailable"), warnings[0]);
  assert(warnings[0].includes("ECONNREFUSED"), warnings[0]);
  assert(!captured.lines.some((line) => /^\s+at /.test(line)), "a stack was logged");

  for (const path of ["/ws/private/", "/ws/open/"]) {
    const refused = await new Communicator(app, path, { headers }).connect();
    assertEquals(refused.accepted, false, path);
    assertEquals(refused.status, 503, path);
    assertEquals(refused.reason, "Server busy: the session store is unavailable; retry later");
  }
  const byToken = await new Communicator(app, `/ws/private/?token=${token}`).connect();
  assertEquals([byToken.status, byToken.reason], [
    503,
    "Token could not be checked: try again later",
  ]);
  await captured.waitFor(/^WebSocket REJECT \/ws\/private\/ .*\(Server busy: the session store/);
  assert(!captured.lines.some((line) => line.includes(token)), "the token was logged");
  assert(!captured.lines.some((line) => line.includes("Login required")), "refused as a login");

  store.away = false;
  const comm = new Communicator(app, "/ws/private/", { headers });
  assertEquals((await comm.connect()).accepted, true);
  await comm.disconnect();
  await app.close();
});
