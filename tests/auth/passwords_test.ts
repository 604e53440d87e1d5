import { assert, assertEquals, assertFalse, assertMatch, assertThrows } from "@std/assert";
import { decodeHash, MIN_PASSWORD_ITERATIONS, PasswordHasher } from "../../auth/passwords.ts";

const fast = new PasswordHasher({ iterations: 1000, allowWeak: true });

Deno.test("a hash carries its algorithm, iterations and salt, Django-style", async () => {
  const encoded = await fast.hash("correct horse battery");
  assertMatch(encoded, /^pbkdf2_sha256\$1000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9+/]{43}=$/);
  const decoded = decodeHash(encoded)!;
  assertEquals(decoded.iterations, 1000);
  assertEquals(decoded.hash.length, 32);
});

Deno.test("the right password verifies and a wrong one does not", async () => {
  const encoded = await fast.hash("correct horse battery");
  assert(await fast.verify("correct horse battery", encoded));
  assertFalse(await fast.verify("correct horse batterY", encoded));
  assertFalse(await fast.verify("", encoded));
});

Deno.test("the same password hashes differently each time (random salt)", async () => {
  const [a, b] = [await fast.hash("same password"), await fast.hash("same password")];
  assert(a !== b);
  assert(await fast.verify("same password", a) && await fast.verify("same password", b));
});

Deno.test("a tampered or malformed hash never verifies", async () => {
  const encoded = await fast.hash("secret words");
  const [algorithm, iterations, salt, hash] = encoded.split("$");
  const flipped = (hash[0] === "A" ? "B" : "A") + hash.slice(1);
  for (
    const bad of [
      [algorithm, iterations, salt, flipped].join("$"),
      [algorithm, "1001", salt, hash].join("$"),
      [algorithm, iterations, salt + "x", hash].join("$"),
      ["md5", iterations, salt, hash].join("$"),
      [algorithm, "-5", salt, hash].join("$"),
      [algorithm, iterations, salt, "%%%"].join("$"),
      "pbkdf2_sha256$1000$salt",
      "",
    ]
  ) {
    assertFalse(await fast.verify("secret words", bad), bad);
  }
});

Deno.test("a hash in Django's format from another implementation verifies", async () => {
  // What Django's PBKDF2PasswordHasher stores for "password" with salt "seasalt" and 1000
  // iterations: base64(hashlib.pbkdf2_hmac("sha256", b"password", b"seasalt", 1000)).
  const django = "pbkdf2_sha256$1000$seasalt$YIWkt6M1JFXrHg5s0jZjBSc7C2Cz6QvchSJ0h8Y+i7c=";
  assert(await fast.verify("password", django));
  assertFalse(await fast.verify("Password", django));
});

Deno.test("a hash with fewer iterations than configured needs a rehash", async () => {
  const stronger = new PasswordHasher({ iterations: 2000, allowWeak: true });
  const old = await fast.hash("pw for rehash");
  assert(stronger.needsRehash(old));
  assertFalse(fast.needsRehash(old));
  assert(fast.needsRehash("not a hash"));
  assert(await stronger.verify("pw for rehash", old), "old hashes still verify");
});

Deno.test("fewer than 600,000 iterations are refused unless weak hashing is allowed", () => {
  assertEquals(new PasswordHasher().iterations, MIN_PASSWORD_ITERATIONS);
  assertThrows(() => new PasswordHasher({ iterations: 599_999 }), RangeError, "600000");
  assertEquals(new PasswordHasher({ iterations: 10, allowWeak: true }).iterations, 10);
});

Deno.test("a 600,000-iteration hash does not block the event loop", async () => {
  const hasher = new PasswordHasher();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    const encoded = await hasher.hash("a production strength hash");
    assertMatch(encoded, /^pbkdf2_sha256\$600000\$/);
  } finally {
    clearInterval(timer);
  }
  // Hundreds of milliseconds of hashing: a blocked loop would not have ticked at all.
  assert(ticks > 5, `the interval ran ${ticks} times while hashing`);
});

Deno.test("the dummy check for unknown users always fails", async () => {
  assertFalse(await fast.verifyDummy("anything"));
});

// The shortest of `runs` timings of `check`, in ms: the least disturbed by the machine.
async function fastestOf(runs: number, check: () => Promise<unknown>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await check();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

Deno.test("an unknown user takes as long as a wrong password on a hash with more iterations", async () => {
  // A user imported from Django 5.2 (1,000,000 iterations) on a server configured for
  // 600,000: here 4x the configured count, so the difference dwarfs the machine's noise.
  const hasher = new PasswordHasher({ iterations: 40_000, allowWeak: true });
  const imported = await new PasswordHasher({ iterations: 160_000, allowWeak: true })
    .hash("the imported password");
  const older = await hasher.hash("an ordinary password");
  const knownWrong = await fastestOf(3, () => hasher.verify("a guess", imported));
  const unknown = await fastestOf(3, () => hasher.verifyDummy("a guess"));
  const ordinaryWrong = await fastestOf(3, () => hasher.verify("a guess", older));
  // Equal work each way: within 0.6x to 1/0.6x of each other on a noisy machine, where the
  // unpadded checks took a quarter of the time.
  assert(unknown > knownWrong * 0.6, `unknown user ${unknown} ms, wrong password ${knownWrong} ms`);
  assert(
    ordinaryWrong > knownWrong * 0.6,
    `wrong password on a 40,000 hash ${ordinaryWrong} ms, on a 160,000 one ${knownWrong} ms`,
  );
  assert(
    await hasher.verify("the imported password", imported),
    "the imported hash still verifies",
  );
});
