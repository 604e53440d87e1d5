/**
 * Two changes to one user at once (a log-in that upgrades the hash, a password change, a staff
 * change; from two processes, say): each lands between the other's read and its write, and
 * neither is undone. The store below runs the other change at exactly that moment.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import type { Store } from "../../storage/store.ts";
import { PasswordHasher } from "../../auth/passwords.ts";
import { UserChangeConflictError, UserDirectory, type UserRecord } from "../../auth/users.ts";

const OLD = "quiet river stone";
const NEW = "amber lantern field";

// `store`, on which `between` runs just before the first write (or compare-and-set), or before
// each of the first `times`.
function changedBeforeFirstWrite(
  store: Store,
  between: () => Promise<unknown>,
  times = 1,
): Store {
  const first = async () => {
    if (times-- > 0) await between();
  };
  return {
    get: (key) => store.get(key),
    set: async (key, value, options) => (await first(), await store.set(key, value, options)),
    create: (key, value) => store.create(key, value),
    replace: async (
      key,
      expected,
      value,
    ) => (await first(), await store.replace(key, expected, value)),
    delete: (key) => store.delete(key),
    writeMany: (changes) => store.writeMany(changes),
    list: (prefix, options) => store.list(prefix, options),
    close: () => store.close(),
  };
}

async function setUp(username: string) {
  const store = await DenoKvStore.open(":memory:");
  // Another process's directory; the iteration count was raised since the user signed up.
  const other = new UserDirectory(store, new PasswordHasher({ iterations: 1000, allowWeak: true }));
  await other.create(username, OLD);
  const racing = (between: () => Promise<unknown>, times?: number) =>
    new UserDirectory(
      changedBeforeFirstWrite(store, between, times),
      new PasswordHasher({ iterations: 2000, allowWeak: true }),
    );
  return { other, racing, [Symbol.dispose]: () => store.close() };
}

// "Straße" is kept under two keys ("strasse" and "straße"; see auth/users.ts).
for (const username of ["ada", "Straße"]) {
  Deno.test(`a password changed just before a log-in writes its upgraded hash stands (${username})`, async () => {
    using env = await setUp(username);
    const loggingIn = env.racing(() => env.other.setPassword(username, NEW));
    assertEquals(await loggingIn.verifyCredentials(username, OLD), null);
    assertEquals(
      await env.other.verifyCredentials(username, OLD),
      null,
      "the old password is back",
    );
    assertEquals((await env.other.verifyCredentials(username, NEW))?.username, username);
  });

  Deno.test(`a password changed just before a staff change writes stands, and so does the staff change (${username})`, async () => {
    using env = await setUp(username);
    const staffing = env.racing(() => env.other.setPassword(username, NEW));
    assertEquals((await staffing.setStaff(username, true))?.staff, true);
    assertEquals(
      await env.other.verifyCredentials(username, OLD),
      null,
      "the old password is back",
    );
    assertEquals((await env.other.verifyCredentials(username, NEW))?.staff, true);
  });

  Deno.test(`a staff change just before a password change writes stands (${username})`, async () => {
    using env = await setUp(username);
    const changing = env.racing(() => env.other.setStaff(username, true));
    assertEquals((await changing.setPassword(username, NEW))?.staff, true);
    assertEquals((await env.other.verifyCredentials(username, NEW))?.staff, true);
  });
}

Deno.test("a log-in whose hash upgrade lost to a staff change logs in as the user now is", async () => {
  using env = await setUp("ada");
  const loggingIn = env.racing(() => env.other.setStaff("ada", true));
  assertEquals((await loggingIn.verifyCredentials("ada", OLD))?.staff, true);
  const stored = await env.other.find("ada");
  assertEquals(stored?.staff, true, "the staff change was undone");
  // The upgrade waits for the next log-in rather than read again and hash again.
  assert(stored!.passwordHash.startsWith("pbkdf2_sha256$1000$"));
});

Deno.test("a password change that another change beats five times over gives up, and writes nothing", async () => {
  using env = await setUp("ada");
  let staff = false;
  const changing = env.racing(() => env.other.setStaff("ada", staff = !staff), 5);
  const error = await assertRejects(
    () => changing.setPassword("ada", NEW),
    UserChangeConflictError,
    "kept changing",
  );
  assertEquals(error.username, "ada");
  assertEquals((await env.other.verifyCredentials("ada", OLD))?.staff, true);
});

function fastHasher(): PasswordHasher {
  return new PasswordHasher({ iterations: 1000, allowWeak: true });
}

// `store`, on which `between` runs once, just before the first create of `at`.
function changedBeforeCreate(
  store: Store,
  at: readonly string[],
  between: () => Promise<unknown>,
): Store {
  let ran = false;
  return {
    get: (key) => store.get(key),
    set: (key, value, options) => store.set(key, value, options),
    create: async (key, value) => {
      if (!ran && key.join("\u0000") === at.join("\u0000")) {
        ran = true;
        await between();
      }
      return await store.create(key, value);
    },
    replace: (key, expected, value) => store.replace(key, expected, value),
    delete: (key) => store.delete(key),
    writeMany: (changes) => store.writeMany(changes),
    list: (prefix, options) => store.list(prefix, options),
    close: () => store.close(),
  };
}

async function openStore() {
  const store = await DenoKvStore.open(":memory:");
  return { store, [Symbol.dispose]: () => store.close() };
}

// A sign-up of a name kept under two keys writes its folded key, then its lower-case copy: a
// change that lands between the two must not be undone by the copy written after it.
const changes = {
  "a password change": (users: UserDirectory) => users.setPassword("Straße", NEW),
  "a staff change": (users: UserDirectory) => users.setStaff("Straße", true),
};

for (const [name, makeChange] of Object.entries(changes)) {
  Deno.test(`${name} between a two-key sign-up's writes stands, and the sign-up too`, async () => {
    using env = await openStore();
    const store = env.store;
    const other = new UserDirectory(store, fastHasher());
    // The sign-up's second write is its copy under "straße".
    const signingUp = new UserDirectory(
      changedBeforeCreate(store, ["users", "straße"], () => makeChange(other)),
      fastHasher(),
    );
    assertEquals((await signingUp.create("Straße", OLD))?.username, "Straße");
    const password = name === "a password change" ? NEW : OLD;
    const user = await other.verifyCredentials("Straße", password);
    assertEquals(user?.username, "Straße", "the change was undone");
    assertEquals(user?.staff, name === "a staff change", "the change was undone");
    if (password === NEW) assertEquals(await other.verifyCredentials("Straße", OLD), null);
    // Both keys say the same, for a version that reads the lower-case one only.
    assertEquals(await store.get(["users", "straße"]), await store.get(["users", "strasse"]));
  });
}

Deno.test("a change that finds a sign-up's copy written just before its own reads again, and stands", async () => {
  using env = await openStore();
  const store = env.store;
  const other = new UserDirectory(store, fastHasher());
  // A sign-up stopped between its two writes, as seen by the change.
  await other.create("Straße", OLD);
  const signedUp = await store.get(["users", "straße"]);
  await store.delete(["users", "straße"]);
  const changing = new UserDirectory(
    changedBeforeFirstWrite(store, () => store.create(["users", "straße"], signedUp)),
    fastHasher(),
  );
  assertEquals((await changing.setPassword("Straße", NEW))?.username, "Straße");
  assertEquals(await other.verifyCredentials("Straße", OLD), null, "the old password is back");
  assertEquals((await other.verifyCredentials("Straße", NEW))?.username, "Straße");
  assertEquals(await store.get(["users", "straße"]), await store.get(["users", "strasse"]));
});

Deno.test("a change to a user whose lower-case key another account holds leaves that account", async () => {
  using env = await openStore();
  const store = env.store;
  const users = new UserDirectory(store, fastHasher());
  await users.create("Straße", OLD);
  // Another account, signed up at the same moment by a version that keeps users under their
  // lower-case key only, took it before the copy was written.
  const another = { ...(await store.get<UserRecord>(["users", "straße"]))!, username: "STRAßE" };
  await store.set(["users", "straße"], { ...another, createdAt: "2020-01-01T00:00:00.000Z" });
  assertEquals((await users.setPassword("Straße", NEW))?.username, "Straße");
  assertEquals((await users.verifyCredentials("Straße", NEW))?.username, "Straße");
  assertEquals((await store.get<UserRecord>(["users", "straße"]))?.username, "STRAßE");
  assertEquals((await store.list(["users"])).length, 2);
});

Deno.test("a change to a user with no copy yet does not undo what an earlier version wrote meanwhile", async () => {
  using env = await openStore();
  const store = env.store;
  const other = new UserDirectory(store, fastHasher());
  // A sign-up stopped between its two writes: "Straße" under its folded key only.
  await other.create("Straße", OLD);
  await store.delete(["users", "straße"]);
  const folded = (await store.get<UserRecord>(["users", "strasse"]))!;
  const newHash = (await other.create("Someone", NEW))!.passwordHash;
  // A version before this one changes the password with a plain write of the folded key, just
  // as the staff change has made the copy, before it writes the folded key.
  let writes = 0;
  const racing: Store = {
    get: (key) => store.get(key),
    set: (key, value, options) => store.set(key, value, options),
    create: (key, value) => store.create(key, value),
    replace: async (key, expected, value) => {
      if (writes++ === 0) {
        await store.set(["users", "strasse"], { ...folded, passwordHash: newHash });
      }
      return await store.replace(key, expected, value);
    },
    delete: (key) => store.delete(key),
    writeMany: (changes) => store.writeMany(changes),
    list: (prefix, options) => store.list(prefix, options),
    close: () => store.close(),
  };
  const staffing = new UserDirectory(racing, fastHasher());
  assertEquals((await staffing.setStaff("Straße", true))?.staff, true);
  assertEquals(await other.verifyCredentials("Straße", OLD), null, "the old password is back");
  assertEquals((await other.verifyCredentials("Straße", NEW))?.staff, true);
});

Deno.test("a sign-up's second write does not undo what an earlier version wrote between its two writes", async () => {
  using env = await openStore();
  const store = env.store;
  const other = new UserDirectory(store, fastHasher());
  const newHash = (await other.create("Someone", NEW))!.passwordHash;
  // A version before this one changes the password with a plain write of the folded key alone,
  // between the sign-up's folded key and its copy.
  const signingUp = new UserDirectory(
    changedBeforeCreate(store, ["users", "straße"], async () => {
      const folded = (await store.get<UserRecord>(["users", "strasse"]))!;
      await store.set(["users", "strasse"], { ...folded, passwordHash: newHash });
    }),
    fastHasher(),
  );
  assertEquals((await signingUp.create("Straße", OLD))?.username, "Straße");
  assertEquals(await other.verifyCredentials("Straße", OLD), null, "the old password is back");
  assertEquals((await other.verifyCredentials("Straße", NEW))?.username, "Straße");
});
