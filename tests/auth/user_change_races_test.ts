/**
 * Two changes to one user at once (a log-in that upgrades the hash, a password change, a staff
 * change; from two processes, say): each lands between the other's read and its write, and
 * neither is undone. The store below runs the other change at exactly that moment.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import type { Store } from "../../storage/store.ts";
import { PasswordHasher } from "../../auth/passwords.ts";
import { UserChangeConflictError, UserDirectory } from "../../auth/users.ts";

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
