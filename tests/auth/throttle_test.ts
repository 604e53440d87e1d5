import { assert, assertEquals } from "@std/assert";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import {
  clientHost,
  type LoginAttempt,
  LoginThrottle,
  type Throttled,
} from "../../auth/throttle.ts";

const LIMITS = { perUsername: 3, perAddress: 5, windowSeconds: 600 };

async function setUp() {
  const store = await DenoKvStore.open(":memory:");
  let now = Date.UTC(2030, 0, 1);
  const throttle = new LoginThrottle(store, LIMITS, { now: () => now });
  return {
    throttle,
    advance: (ms: number) => now += ms,
    [Symbol.dispose]: () => store.close(),
  };
}

function refused(verdict: LoginAttempt | Throttled): verdict is Throttled {
  return "retryAfterSeconds" in verdict;
}

function mustRefuse(verdict: LoginAttempt | Throttled): Throttled {
  if (!refused(verdict)) throw new Error("The attempt was let through");
  return verdict;
}

function mustAllow(verdict: LoginAttempt | Throttled): LoginAttempt {
  if (refused(verdict)) throw new Error("The attempt was refused");
  return verdict;
}

Deno.test("after the allowed failures for one username, the next attempt is refused", async () => {
  using env = await setUp();
  for (let i = 0; i < 3; i++) assert(!refused(await env.throttle.begin("ada", "10.0.0.1")));
  // The username counts in any case and from any address.
  const verdict = mustRefuse(await env.throttle.begin("ADA", "10.0.0.2"));
  assertEquals(verdict.retryAfterSeconds, 600);
  assert(!refused(await env.throttle.begin("grace", "10.0.0.1")), "other users are unaffected");
});

Deno.test("the refusal lifts once the oldest failure leaves the window", async () => {
  using env = await setUp();
  for (let i = 0; i < 3; i++) {
    await env.throttle.begin("ada", "10.0.0.1");
    env.advance(60_000);
  }
  const verdict = mustRefuse(await env.throttle.begin("ada", "10.0.0.1"));
  assertEquals(verdict.retryAfterSeconds, 420);
  env.advance(420_000);
  assert(!refused(await env.throttle.begin("ada", "10.0.0.1")));
});

Deno.test("waiting out Retry-After is enough when the lock-out is not whole seconds", async () => {
  using env = await setUp();
  for (let i = 0; i < 3; i++) await env.throttle.begin("ada", "10.0.0.1");
  env.advance(500);
  const verdict = mustRefuse(await env.throttle.begin("ada", "10.0.0.1"));
  assertEquals(verdict.retryAfterSeconds, 600); // 599.5 s, rounded up
  env.advance(verdict.retryAfterSeconds * 1000);
  assert(!refused(await env.throttle.begin("ada", "10.0.0.1")), "refused after Retry-After");
});

Deno.test("refused attempts do not extend the lock-out", async () => {
  using env = await setUp();
  for (let i = 0; i < 3; i++) await env.throttle.begin("ada", "10.0.0.1");
  for (let i = 0; i < 10; i++) {
    env.advance(30_000);
    assert(refused(await env.throttle.begin("ada", "10.0.0.1")));
  }
  env.advance(300_000);
  assert(!refused(await env.throttle.begin("ada", "10.0.0.1")));
});

Deno.test("successful logins are not counted as failures", async () => {
  using env = await setUp();
  for (let i = 0; i < 10; i++) {
    await mustAllow(await env.throttle.begin("ada", "10.0.0.1")).succeeded();
  }
});

Deno.test("one address guessing many usernames is refused after its allowance", async () => {
  using env = await setUp();
  for (let i = 0; i < 5; i++) assert(!refused(await env.throttle.begin(`user${i}`, "10.0.0.9")));
  assert(refused(await env.throttle.begin("user99", "10.0.0.9")));
  assert(!refused(await env.throttle.begin("user99", "10.0.0.10")));
});

Deno.test("parallel guesses are counted before any is judged", async () => {
  using env = await setUp();
  const verdicts = await Promise.all(
    Array.from({ length: 20 }, () => env.throttle.begin("ada", "10.0.0.1")),
  );
  const letThrough = verdicts.filter((verdict) => !refused(verdict)).length;
  assert(letThrough <= 3, `${letThrough} of 20 parallel attempts were let through`);
});

Deno.test("the client's host is taken without its port", () => {
  assertEquals(clientHost("203.0.113.9:51000"), "203.0.113.9");
  assertEquals(clientHost("[2001:db8::1]:443"), "2001:db8::1");
  assertEquals(clientHost("2001:db8::1"), "2001:db8::1");
  assertEquals(clientHost("198.51.100.7"), "198.51.100.7");
});
