/**
 * An app's HTTP handler that throws, or forgets its `return`, under a test's silent log: the
 * test's output says what went wrong, not only the 500 page (`server/_told_in_tests.ts`).
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { createApp, page } from "../../mod.ts";
import { createTestServices, type TestServices } from "../../testing.ts";
import { TEST_REPORTS, type TestReporter } from "../../server/_told_in_tests.ts";
import { CapturedLog } from "../_support/captured_log.ts";

// Test services whose reports (on the test's output by default) are kept in `told` instead.
function telling(services: TestServices, told: string[]): TestServices {
  const report: TestReporter = (text, error) =>
    told.push(error instanceof Error ? `${text} ${error.stack}` : text);
  return { ...services, [TEST_REPORTS]: report } as TestServices;
}

// Answers `path` of `app`, its body read.
async function status(app: { handle(request: Request): Promise<Response> }, path: string) {
  const response = await app.handle(new Request(`http://localhost${path}`));
  await response.body?.cancel();
  return response.status;
}

Deno.test("a page handler that throws or returns no Response under test services is said on the test's output", async () => {
  await using services = await createTestServices();
  const told: string[] = [];
  const app = createApp({
    routes: [
      page("GET", "/throws/", () => {
        throw new RangeError("the handler's bug");
      }),
      page("GET", "/forgot/", (() => undefined) as unknown as () => Response),
      page("GET", "/fine/", () => new Response("ok")),
    ],
    services: telling(services, told),
  });
  assertEquals(await status(app, "/throws/"), 500);
  assertEquals(await status(app, "/forgot/"), 500);
  assertEquals(await status(app, "/fine/"), 200);
  assertEquals(told.length, 2, told.join("\n"));
  assertStringIncludes(told[0], "App: Handler failed for GET /throws/ (answered 500):");
  assertStringIncludes(told[0], "RangeError: the handler's bug");
  assertStringIncludes(
    told[1],
    "App: Handler for GET /forgot/ returned undefined, not a Response (answered 500)",
  );
});

Deno.test("test services copied with a setting of their own still tell the test", async () => {
  await using services = await createTestServices();
  const copy = { ...services, config: { ...services.config, maxMessageBytes: 1024 } };
  const report = (copy as { [TEST_REPORTS]?: unknown })[TEST_REPORTS];
  assertEquals(typeof report, "function");
  assertEquals(report, (services as { [TEST_REPORTS]?: unknown })[TEST_REPORTS]);
});

Deno.test("a test that shows the log gets the handler's failure once, in the log", async () => {
  await using services = await createTestServices({ logLevel: "error" });
  using captured = new CapturedLog();
  const told: string[] = [];
  const app = createApp({
    routes: [page("GET", "/throws/", () => Promise.reject(new Error("bug")))],
    services: telling(services, told),
  });
  assertEquals(await status(app, "/throws/"), 500);
  assertEquals(told, []);
  assertEquals(captured.lines.filter((line) => line.includes("Handler failed for GET")).length, 1);
});
