/**
 * An app's HTTP handler that throws, or forgets its `return`, under a test's silent log: the
 * test's output says what went wrong, not only the 500 page (`server/_told_in_tests.ts`).
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { createApp, page } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";

// What `console.error` printed while `run` ran.
async function printedDuring(run: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const original = console.error;
  console.error = (...parts: unknown[]) =>
    printed.push(parts.map((part) => part instanceof Error ? part.stack : String(part)).join(" "));
  try {
    await run();
  } finally {
    console.error = original;
  }
  return printed;
}

Deno.test("a page handler that throws or returns no Response under test services is said on the test's output", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [
      page("GET", "/throws/", () => {
        throw new RangeError("the handler's bug");
      }),
      page("GET", "/forgot/", (() => undefined) as unknown as () => Response),
      page("GET", "/fine/", () => new Response("ok")),
    ],
    services,
  });
  const printed = await printedDuring(async () => {
    const thrown = await app.handle(new Request("http://localhost/throws/"));
    assertEquals(thrown.status, 500);
    await thrown.body?.cancel();
    const forgot = await app.handle(new Request("http://localhost/forgot/"));
    assertEquals(forgot.status, 500);
    await forgot.body?.cancel();
    assertEquals(await (await app.handle(new Request("http://localhost/fine/"))).text(), "ok");
  });
  assertEquals(printed.length, 2, printed.join("\n"));
  assertStringIncludes(printed[0], "App: Handler failed for GET /throws/ (answered 500):");
  assertStringIncludes(printed[0], "RangeError: the handler's bug");
  assertStringIncludes(
    printed[1],
    "App: Handler for GET /forgot/ returned undefined, not a Response (answered 500)",
  );
});

Deno.test("a test that shows the log itself gets the handler's failure once, in the log", async () => {
  await using services = await createTestServices({ logLevel: "error" });
  const app = createApp({
    routes: [page("GET", "/throws/", () => Promise.reject(new Error("bug")))],
    services,
  });
  const printed = await printedDuring(async () => {
    const response = await app.handle(new Request("http://localhost/throws/"));
    await response.body?.cancel();
  });
  // The log's own line (on the console: no sink set), not a second one.
  assertEquals(printed.filter((line) => line.includes("App: ")).length, 0, printed.join("\n"));
  assertEquals(
    printed.filter((line) => line.includes("Handler failed for GET /throws/")).length,
    1,
  );
});
