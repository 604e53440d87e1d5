import { assertEquals, assertThrows } from "@std/assert";
import { loadConfig } from "../../server/config.ts";

Deno.test("passwords get 600,000 PBKDF2 iterations unless told more", () => {
  assertEquals(loadConfig([], {}).passwordIterations, 600_000);
  assertEquals(loadConfig([], { PASSWORD_ITERATIONS: "1200000" }).passwordIterations, 1_200_000);
});

Deno.test("fewer than 600,000 iterations are refused unless weak hashing is allowed for tests", () => {
  assertThrows(
    () => loadConfig([], { PASSWORD_ITERATIONS: "1000" }),
    Error,
    "PASSWORD_ITERATIONS must be a whole number from 600000",
  );
  const weak = loadConfig([], { PASSWORD_ITERATIONS: "1000", ALLOW_WEAK_PASSWORD_HASHING: "true" });
  assertEquals([weak.passwordIterations, weak.allowWeakPasswordHashing], [1000, true]);
});

Deno.test("the session age and the login throttle are configurable", () => {
  const config = loadConfig([], {
    SESSION_MAX_AGE: "3600",
    LOGIN_MAX_FAILURES: "10",
    LOGIN_MAX_FAILURES_PER_ADDRESS: "50",
    LOGIN_FAILURE_WINDOW: "300",
  });
  assertEquals(config.sessionMaxAgeSeconds, 3600);
  assertEquals(config.loginThrottle, { perUsername: 10, perAddress: 50, windowSeconds: 300 });
  assertEquals(loadConfig([], {}).loginThrottle, {
    perUsername: 5,
    perAddress: 20,
    windowSeconds: 900,
  });
});
