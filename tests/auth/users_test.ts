import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { PasswordHasher } from "../../auth/passwords.ts";
import { UserDirectory } from "../../auth/users.ts";

async function setUp(iterations = 1000) {
  const store = await DenoKvStore.open(":memory:");
  const users = new UserDirectory(store, new PasswordHasher({ iterations, allowWeak: true }));
  return { store, users, [Symbol.dispose]: () => store.close() };
}

Deno.test("a user is created once; the same name in another case is taken", async () => {
  using env = await setUp();
  const ada = await env.users.create("Ada", "quiet river stone");
  assertEquals(ada?.username, "Ada");
  assertEquals(await env.users.create("ADA", "another password"), null);
  assertEquals(await env.users.create("ａｄａ", "another password"), null, "fullwidth letters");
  assertEquals((await env.users.find("aDa"))?.username, "Ada");
});

Deno.test("names that differ only by a case with no one-letter partner are one account", async () => {
  using env = await setUp();
  assertEquals((await env.users.create("straße", "quiet river stone"))?.username, "straße");
  assertEquals(await env.users.create("STRASSE", "another password"), null);
  assertEquals(
    (await env.users.verifyCredentials("STRASSE", "quiet river stone"))?.username,
    "straße",
  );
  await env.users.create("νίκος", "quiet river stone");
  assertEquals((await env.users.find("ΝΊΚΟΣ"))?.username, "νίκος");
});

Deno.test("users stored under lower-case keys, before case was folded fully, are found and kept", async () => {
  using env = await setUp();
  // As an earlier version stored them: "straßex" under its lower case; two accounts that
  // differ only by "ß" and "SS", each under its own.
  const hash = (await env.users.create("seed", "quiet river stone"))!.passwordHash;
  const user = (username: string) => ({
    username,
    passwordHash: hash,
    createdAt: username,
    staff: false,
  });
  await env.store.set(["users", "straßex"], user("straßex"));
  await env.store.set(["users", "straßey"], user("straßey"));
  await env.store.set(["users", "strassey"], user("STRASSEY"));
  const fresh = new UserDirectory(
    env.store,
    new PasswordHasher({ iterations: 1000, allowWeak: true }),
  );
  // Copied: found in any case, and its name cannot be taken again.
  assertEquals((await fresh.find("STRASSEX"))?.username, "straßex");
  assertEquals(await fresh.create("Strassex", "another password"), null);
  assertEquals(await fresh.usernames(), ["seed", "straßex", "STRASSEY", "straßey"]);
  // Both kept, each found by its own name; the password is checked against the right one.
  assertEquals((await fresh.find("straßey"))?.username, "straßey");
  assertEquals((await fresh.find("STRASSEY"))?.username, "STRASSEY");
  assertEquals(
    (await fresh.verifyCredentials("Straßey", "quiet river stone"))?.username,
    "straßey",
  );
  assertEquals((await fresh.setStaff("straßey", true))?.staff, true);
  assertEquals((await fresh.find("STRASSEY"))?.staff, false);
});

Deno.test("parallel sign-ups of one name create exactly one user", async () => {
  using env = await setUp();
  const results = await Promise.all(
    ["zoe", "Zoe", "ZOE", "zoE"].map((name) => env.users.create(name, "quiet river stone")),
  );
  assertEquals(results.filter((user) => user !== null).length, 1);
});

Deno.test("the password is stored only as a salted hash", async () => {
  using env = await setUp();
  await env.users.create("ada", "quiet river stone");
  const stored = JSON.stringify(await env.store.list(["users"]));
  assert(!stored.includes("quiet river stone"));
  assert(stored.includes("pbkdf2_sha256$1000$"));
});

Deno.test("credentials verify for the right password only, in any username case", async () => {
  using env = await setUp();
  await env.users.create("ada", "quiet river stone");
  assertEquals((await env.users.verifyCredentials("ADA", "quiet river stone"))?.username, "ada");
  assertEquals(await env.users.verifyCredentials("ada", "quiet river stones"), null);
  assertEquals(await env.users.verifyCredentials("nobody", "quiet river stone"), null);
  assertEquals(await env.users.verifyCredentials("", ""), null);
});

Deno.test("a login upgrades a hash made with fewer iterations", async () => {
  using env = await setUp(1000);
  await env.users.create("ada", "quiet river stone");
  const before = (await env.users.find("ada"))!.passwordHash;
  const stronger = new UserDirectory(
    env.store,
    new PasswordHasher({ iterations: 2000, allowWeak: true }),
  );
  assert(await stronger.verifyCredentials("ada", "quiet river stone"));
  const after = (await env.users.find("ada"))!.passwordHash;
  assertNotEquals(after, before);
  assert(after.startsWith("pbkdf2_sha256$2000$"));
  assert(await stronger.verifyCredentials("ada", "quiet river stone"));
});

Deno.test("every username is listed, sorted without regard to case", async () => {
  using env = await setUp();
  for (const name of ["carol", "Bob", "alice", "Émile"]) {
    await env.users.create(name, "quiet river stone");
  }
  assertEquals(await env.users.usernames(), ["alice", "Bob", "carol", "Émile"]);
});

Deno.test("an unknown username costs a full password hash, as a wrong password does", async () => {
  const hashed: string[] = [];
  class CountingHasher extends PasswordHasher {
    override verify(password: string, encoded: string): Promise<boolean> {
      hashed.push("verify");
      return super.verify(password, encoded);
    }
    override verifyDummy(password: string): Promise<false> {
      hashed.push("dummy");
      return super.verifyDummy(password);
    }
  }
  const store = await DenoKvStore.open(":memory:");
  try {
    const users = new UserDirectory(
      store,
      new CountingHasher({ iterations: 1000, allowWeak: true }),
    );
    await users.create("ada", "quiet river stone");
    await users.verifyCredentials("ada", "wrong password");
    await users.verifyCredentials("nobody", "wrong password");
    assertEquals(hashed, ["verify", "dummy"]);
  } finally {
    store.close();
  }
});

Deno.test("a version that finds users by their lower-case name still finds every account, and its changes", async () => {
  // A rolling deploy on Redis runs such a version beside this one; a rollback runs it after.
  using env = await setUp();
  const lowerCaseFind = async (
    name: string,
  ) => (await env.store.get<{ username: string; staff: boolean }>(["users", name.toLowerCase()]));
  await env.users.create("Weiße", "quiet river stone");
  assertEquals((await lowerCaseFind("Weiße"))?.username, "Weiße");
  // Staff set here shows there too, and the copy under the folded key is the one listed.
  await env.users.setStaff("WEISSE", true);
  assertEquals((await lowerCaseFind("weiße"))?.staff, true);
  assertEquals(await env.users.usernames(), ["Weiße"]);
  // A change such a version makes to its copy (a staff grant, say) is seen here.
  const old = await lowerCaseFind("weiße");
  await env.store.set(["users", "weiße"], { ...old, staff: false });
  assertEquals((await env.users.find("WEISSE"))?.staff, false);
  // One made by such a version meanwhile is found here by any case, once this starts again.
  const made = { ...(await env.users.find("Weiße"))!, username: "Maß", createdAt: "then" };
  await env.store.set(["users", "maß"], made);
  const restarted = new UserDirectory(
    env.store,
    new PasswordHasher({ iterations: 1000, allowWeak: true }),
  );
  assertEquals((await restarted.find("MASS"))?.username, "Maß");
  assertEquals(await restarted.create("MASS", "another password"), null);
});

Deno.test("after the iteration count is raised, a known user's wrong password takes what an unknown name takes", async () => {
  using env = await setUp(1000);
  await env.users.create("ada", "quiet river stone");
  const raised = new UserDirectory(
    env.store,
    new PasswordHasher({ iterations: 40_000, allowWeak: true }),
  );
  // The median of a few tries of each, measured in the same run.
  const median = async (username: string) => {
    const took: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      assertEquals(await raised.verifyCredentials(username, "wrong password"), null);
      took.push(performance.now() - start);
    }
    return took.sort((a, b) => a - b)[2];
  };
  await median("nobody"); // warm-up
  const known = await median("ada");
  const unknown = await median("nobody");
  // Before: 1,000 iterations against 40,000, a fortieth of the time.
  assert(known > unknown / 3, `known ${known} ms against unknown ${unknown} ms`);
});

// A hasher whose next `hash` waits for `release`: what another request does meanwhile.
class HeldHasher extends PasswordHasher {
  #held: PromiseWithResolvers<void> | null = null;
  readonly reached = Promise.withResolvers<void>();

  holdNextHash(): () => void {
    const held = this.#held = Promise.withResolvers<void>();
    return () => held.resolve();
  }

  override async hash(password: string): Promise<string> {
    const held = this.#held;
    this.#held = null;
    if (held !== null) {
      this.reached.resolve();
      await held.promise;
    }
    return await super.hash(password);
  }
}

Deno.test("a log-in that upgrades the hash while the password changes neither undoes the change nor logs in", async () => {
  using env = await setUp(1000);
  await env.users.create("ada", "quiet river stone");
  // The iteration count was raised since: a log-in makes the hash again with the password.
  const hasher = new HeldHasher({ iterations: 2000, allowWeak: true });
  const users = new UserDirectory(env.store, hasher);
  const release = hasher.holdNextHash();
  const loggingIn = users.verifyCredentials("ada", "quiet river stone");
  await hasher.reached.promise;
  await users.setPassword("ada", "amber lantern field");
  release();
  assertEquals(await loggingIn, null, "the old password is no longer the user's");
  assertEquals((await users.verifyCredentials("ada", "amber lantern field"))?.username, "ada");
  assertEquals(await users.verifyCredentials("ada", "quiet river stone"), null);
});

Deno.test("a password change keeps what changed while its hash was made", async () => {
  using env = await setUp(1000);
  await env.users.create("ada", "quiet river stone");
  const hasher = new HeldHasher({ iterations: 1000, allowWeak: true });
  const users = new UserDirectory(env.store, hasher);
  const release = hasher.holdNextHash();
  const changing = users.setPassword("ada", "amber lantern field");
  await hasher.reached.promise;
  await users.setStaff("ada", true);
  release();
  await changing;
  assertEquals((await users.find("ada"))?.staff, true);
  assertEquals((await users.verifyCredentials("ada", "amber lantern field"))?.username, "ada");
});

Deno.test("a name that looks like an account's is found whichever came first, and whatever its letters", async () => {
  using env = await setUp();
  // A Cyrillic "с" first: the Latin "carol" made after it would show as the same author.
  await env.users.create("\u0441arol", "quiet river stone");
  assertEquals((await env.users.lookalikeOf("carol"))?.username, "\u0441arol");
  assertEquals((await env.users.lookalikeOf("CAROL"))?.username, "\u0441arol", "in any case");
  // Both with such letters, in different places: a Greek omicron against the Cyrillic "с".
  assertEquals((await env.users.lookalikeOf("car\u03bfl"))?.username, "\u0441arol");
  // The account itself, in another case, is no look-alike of its own (it is taken, as a name).
  assertEquals(await env.users.lookalikeOf("\u0421AROL"), null);
  assertEquals(await env.users.lookalikeOf("carla"), null);
  // A capital whose small letter is the look-alike: Cyrillic "Һ" (U+04BA) is drawn as "H".
  await env.users.create("Harry", "quiet river stone");
  assertEquals((await env.users.lookalikeOf("\u04baarry"))?.username, "Harry");
  assertEquals(await env.users.create("\u04baarry", "quiet river stone"), null);
});

Deno.test("of two sign-ups at once with names that look alike, one account is made", async () => {
  using env = await setUp();
  const made = await Promise.all([
    env.users.create("carol", "quiet river stone"),
    env.users.create("\u0441arol", "quiet river stone"),
  ]);
  assertEquals(made.filter((user) => user !== null).length, 1, JSON.stringify(made));
  assertEquals((await env.users.usernames()).length, 1);
});

Deno.test("accounts made before looks were held are given theirs: the first made keeps it", async () => {
  using env = await setUp();
  // As a version before this one stored them: two accounts that look alike, no holds.
  const hash = (await env.users.create("seed", "quiet river stone"))!.passwordHash;
  const stored = (username: string, createdAt: string) => ({
    username,
    passwordHash: hash,
    createdAt,
    staff: false,
  });
  await env.store.set(["users", "\u0441arol"], stored("\u0441arol", "2026-01-02T00:00:00.000Z"));
  await env.store.set(["users", "carol"], stored("carol", "2026-01-01T00:00:00.000Z"));
  const later = new UserDirectory(
    env.store,
    new PasswordHasher({ iterations: 1000, allowWeak: true }),
  );
  assertEquals((await later.lookalikeOf("car\u03bfl"))?.username, "carol");
  assertEquals(await later.create("car\u03bfl", "quiet river stone"), null);
  assertEquals(await later.usernames(), ["carol", "seed", "\u0441arol"]);
});

Deno.test("a look held by a sign-up that never made its account is free again a minute on", async () => {
  using env = await setUp();
  // A process that stopped between the hold and the account.
  await env.store.set(["user_lookalikes", "carol"], { username: "carol", at: Date.now() });
  assertEquals(await env.users.create("\u0441arol", "quiet river stone"), null, "just held");
  await env.store.set(["user_lookalikes", "carol"], {
    username: "carol",
    at: Date.now() - 61_000,
  });
  assertEquals((await env.users.create("\u0441arol", "quiet river stone"))?.username, "\u0441arol");
  assertEquals((await env.users.lookalikeOf("carol"))?.username, "\u0441arol");
});
