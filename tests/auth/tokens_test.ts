/**
 * Access tokens: signed with HMAC-SHA256, expiring, revocable through the store, checked in
 * constant time, and never shown in a log line.
 */
import { assert, assertEquals, assertLess, assertNotEquals } from "@std/assert";
import { AccessTokens, bearerToken, presentedToken, redactedTarget } from "../../auth/tokens.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";

const DAY = 24 * 3600;

async function tokensOver(
  options: {
    now?: () => number;
    secret?: string;
    compare?: (a: Uint8Array, b: Uint8Array) => boolean;
  } = {},
) {
  const store = await DenoKvStore.open(":memory:");
  const tokens = new AccessTokens(store, { maxAgeSeconds: 30 * DAY, ...options });
  return { store, tokens, [Symbol.dispose]: () => store.close() };
}

Deno.test("a token made for a user verifies as that user until it expires", async () => {
  let now = Date.parse("2026-03-01T12:00:00Z");
  using t = await tokensOver({ now: () => now });
  const issued = await t.tokens.create("Ada");
  assertEquals(issued.expiresAt, now + 30 * DAY * 1000);
  const check = await t.tokens.verify(issued.token);
  assertEquals(check, {
    ok: true,
    claims: { username: "Ada", tokenId: issued.tokenId, expiresAt: issued.expiresAt },
  });
  now = issued.expiresAt - 1;
  assert((await t.tokens.verify(issued.token)).ok, "valid up to the last millisecond");
  now = issued.expiresAt;
  assertEquals(await t.tokens.verify(issued.token), { ok: false, reason: "Token expired" });
});

Deno.test("a token changed anywhere is refused", async () => {
  using t = await tokensOver();
  const { token } = await t.tokens.create("ada");
  const [payload, signature] = token.split(".");
  // Another user's name under the same signature.
  const claims = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
  const forged = btoa(JSON.stringify({ ...claims, username: "root" }))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  assertEquals(await t.tokens.verify(`${forged}.${signature}`), {
    ok: false,
    reason: "Bad token signature",
  });
  // One character of the signature changed.
  const flipped = signature.slice(0, 10) + (signature[10] === "A" ? "B" : "A") +
    signature.slice(11);
  assertEquals((await t.tokens.verify(`${payload}.${flipped}`)).ok, false);
  for (const junk of ["", "abc", `${payload}.`, `${token}.x`, "a".repeat(5000), `${payload} .x`]) {
    assertEquals(await t.tokens.verify(junk), { ok: false, reason: "Malformed token" }, junk);
  }
});

Deno.test("a signature has one spelling: the last character's unused bits changed is refused", async () => {
  using t = await tokensOver();
  const { token } = await t.tokens.create("ada");
  const [payload, signature] = token.split(".");
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // 43 characters carry 258 bits for 256: the last character's two low bits are unused.
  const last = alphabet.indexOf(signature.at(-1)!);
  for (const low of [1, 2, 3]) {
    const respelled = signature.slice(0, -1) + alphabet[(last & ~3) | ((last + low) & 3)];
    assertEquals(await t.tokens.verify(`${payload}.${respelled}`), {
      ok: false,
      reason: "Bad token signature",
    }, respelled);
  }
  assert((await t.tokens.verify(token)).ok, "the canonical spelling still verifies");
});

Deno.test("a token signed with another secret is refused", async () => {
  using a = await tokensOver({ secret: "a".repeat(32) });
  using b = await tokensOver({ secret: "b".repeat(32) });
  const { token } = await a.tokens.create("ada");
  assertEquals(await b.tokens.verify(token), { ok: false, reason: "Bad token signature" });
});

Deno.test("without TOKEN_SECRET, processes on one store share a generated secret", async () => {
  using t = await tokensOver();
  const otherProcess = new AccessTokens(t.store, { maxAgeSeconds: DAY });
  const [fromA, fromB] = await Promise.all([t.tokens.create("ada"), otherProcess.create("bob")]);
  assert((await otherProcess.verify(fromA.token)).ok);
  assert((await t.tokens.verify(fromB.token)).ok);
  const restarted = new AccessTokens(t.store, { maxAgeSeconds: DAY });
  assert((await restarted.verify(fromA.token)).ok, "a restart keeps tokens valid");
});

Deno.test("a shared secret the store lost and made anew is taken up by running processes", async () => {
  let now = Date.now();
  using t = await tokensOver({ now: () => now });
  const before = await t.tokens.create("ada");
  assert((await t.tokens.verify(before.token)).ok);
  // Redis restarted empty: the secret and the records are gone; `deno task token` makes both.
  for (const entry of await t.store.list([])) await t.store.delete(entry.key);
  const cli = new AccessTokens(t.store, { maxAgeSeconds: DAY, now: () => now });
  const after = await cli.create("ada");
  // The running process reads the secret again, though at most every few seconds.
  now += 10_000;
  assert((await t.tokens.verify(after.token)).ok, "a token made with the new secret");
  const forged = `${after.token.split(".")[0]}.${"A".repeat(43)}`;
  let reads = 0;
  const counted = new AccessTokens(
    Object.assign(Object.create(t.store), {
      get: (key: string[]) => (reads++, t.store.get(key)),
    }),
    { maxAgeSeconds: DAY, now: () => now },
  );
  for (let n = 0; n < 50; n++) assertEquals((await counted.verify(forged)).ok, false);
  assert(reads <= 2, `50 bad signatures read the store ${reads} times`);
});

Deno.test("a process that made tokens before the store lost its secret makes the next ones with the store's", async () => {
  using t = await tokensOver();
  await t.tokens.create("ada"); // this process has read the first secret
  for (const entry of await t.store.list([])) await t.store.delete(entry.key);
  // The first process to make a token after the loss: any other process, fresh, checks it.
  const after = await t.tokens.create("ada");
  const otherProcess = new AccessTokens(t.store, { maxAgeSeconds: DAY });
  assert((await otherProcess.verify(after.token)).ok, "made with a secret no longer stored");
  assert((await t.tokens.verify(after.token)).ok);
});

Deno.test("revoking all of a user's tokens refuses them and no one else's", async () => {
  using t = await tokensOver();
  const first = await t.tokens.create("ada");
  const second = await t.tokens.create("ada");
  const bobs = await t.tokens.create("bob");
  assertEquals(
    (await t.tokens.list("ADA")).map((token) => token.tokenId).sort(),
    [
      first.tokenId,
      second.tokenId,
    ].sort(),
  );
  assertEquals(await t.tokens.revokeAll("ADA"), 2, "the name in any case");
  assertEquals(await t.tokens.verify(first.token), { ok: false, reason: "Token revoked" });
  assertEquals(await t.tokens.verify(second.token), { ok: false, reason: "Token revoked" });
  assert((await t.tokens.verify(bobs.token)).ok);
  assertEquals(await t.tokens.list("ada"), []);
  // Another process on the same store sees the revocation at once.
  const otherProcess = new AccessTokens(t.store, { maxAgeSeconds: DAY });
  assertEquals((await otherProcess.verify(first.token)).ok, false);
});

Deno.test("signatures are compared with the constant-time compare", async () => {
  const compared: [number, number][] = [];
  using t = await tokensOver({
    compare: (a, b) => {
      compared.push([a.length, b.length]);
      return a.length === b.length && a.every((byte, i) => byte === b[i]);
    },
  });
  const { token } = await t.tokens.create("ada");
  assert((await t.tokens.verify(token)).ok);
  assertEquals(compared, [[32, 32]]);
  // The default is std's timingSafeEqual: the same verdicts without a compare given.
  using plain = await tokensOver();
  const issued = await plain.tokens.create("ada");
  assert((await plain.tokens.verify(issued.token)).ok);
});

Deno.test("two tokens for one user differ, and none holds the secret", async () => {
  using t = await tokensOver({ secret: "s3cr3t-".repeat(6) });
  const a = await t.tokens.create("ada");
  const b = await t.tokens.create("ada");
  assertNotEquals(a.token, b.token);
  assert(!a.token.includes("s3cr3t"));
});

Deno.test("a token is read from a Bearer header first, else from ?token=", () => {
  const url = "http://h/ws/chat/lobby/?token=fromquery";
  assertEquals(presentedToken(new Request(url)), "fromquery");
  const bearer = new Request(url, { headers: { authorization: "bearer  fromheader" } });
  assertEquals(presentedToken(bearer), "fromheader");
  const basic = new Request("http://h/", { headers: { authorization: "Basic YTpi" } });
  assertEquals(presentedToken(basic), null);
  assertEquals(presentedToken(new Request("http://h/?token=")), null);
  // One rule for users' tokens and the server's own endpoints (`/metrics`, `/_send/`).
  const tab = new Request("http://h/", { headers: { authorization: "Bearer\tfromheader" } });
  assertEquals([presentedToken(tab), bearerToken(tab)], ["fromheader", "fromheader"]);
});

Deno.test("a log target shows the path with every token value redacted", () => {
  assertEquals(redactedTarget(new URL("http://h/chat/")), "/chat/");
  assertEquals(
    redactedTarget(new URL("http://h/ws/chat/x/?a=1&token=SECRET&b=2&tok=3")),
    "/ws/chat/x/?a=1&token=[redacted]&b=2&tok=3",
  );
  assertEquals(redactedTarget(new URL("http://h/?%74oken=SECRET")), "/?%74oken=[redacted]");
  assertEquals(
    redactedTarget(new URL("http://h/?TOKEN=SECRET&token")),
    "/?TOKEN=[redacted]&token=[redacted]",
  );
});

Deno.test("a log target redacts a token inside another parameter, however often encoded", async () => {
  using t = await tokensOver();
  const { token } = await t.tokens.create("ada");
  const once = encodeURIComponent(`/?token=${token}`);
  const twice = encodeURIComponent(once);
  for (const next of [once, twice]) {
    const target = redactedTarget(new URL(`http://h/log_in/?next=${next}&x=1`));
    assertEquals(target.includes(token.split(".")[1]), false, target);
    assertEquals(target.includes("[redacted]"), true, target);
    assertEquals(target.endsWith("&x=1"), true, target);
  }
  // Not a token: left as it is.
  assertEquals(redactedTarget(new URL("http://h/?next=/a.b")), "/?next=/a.b");
});

// The shape a token is redacted by, as one regular expression: the reference the linear search
// is checked against (too slow for the log: it tries again from every "eyJ").
const TOKEN_SHAPE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{43}/g;

Deno.test("a log target's tokens are found by their shape as the one regular expression finds them", () => {
  const signature = "s".repeat(43);
  const cases = [
    `eyJa.${signature}`,
    `xeyJab.${signature}rest`,
    `a.eyJx.${signature}.eyJy.${signature}tail`,
    `eyJa.${signature}eyJb.${signature}`,
    `eyJa.short.eyJb.${signature}`,
    `eyJ.${signature}`,
    `eyJa..${signature}`,
    `eyJa.${signature.slice(1)}`,
    `%2FeyJa.${signature}%26x`,
  ];
  // And random strings of the characters that matter.
  const alphabet = ["e", "y", "J", ".", "s", "%", "-", "eyJ", signature.slice(0, 20)];
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let n = 0; n < 2000; n++) {
    cases.push(Array.from({ length: 12 }, () => alphabet[Math.floor(random() * 9)]).join(""));
  }
  for (const value of cases) {
    const target = redactedTarget(new URL(`http://h/?next=${value}`));
    assertEquals(target, `/?next=${value.replace(TOKEN_SHAPE, "[redacted]")}`, value);
  }
});

Deno.test("a log target of 64 KB costs about what any query of that size costs, whatever its shape", () => {
  const time = (query: string) => {
    const url = new URL(`http://h/?q=${query}`);
    const start = performance.now();
    for (let n = 0; n < 3; n++) redactedTarget(url);
    return performance.now() - start;
  };
  const plain = time("a".repeat(64_000));
  const shaped = time("eyJ".repeat(21_000)); // no dot: every "eyJ" starts a token that never ends
  // Tried again from every "eyJ", it read 10,000 times longer; linear, a few times at most.
  assertLess(shaped, Math.max(plain, 1) * 50, `${shaped} ms against ${plain} ms`);
});
