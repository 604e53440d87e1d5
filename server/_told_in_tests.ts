/**
 * What a test is told that the log alone would say. A test's services (`createTestServices`)
 * silence the log so that its output stays clean; so an app's own bug in an HTTP handler (it
 * threw, or returned no `Response`) would leave nothing but a 500 page to go by, and one in a
 * channel worker (it threw, or has no handler for an event) nothing but a count. It is said on
 * the test's output instead, as a communicator raises what a consumer raised, and as Django's
 * test client raises a view's error.
 */
import { log } from "../telemetry/log.ts";

/** Where what a test is told goes: `console.error` for a test's services. */
export type TestReporter = (text: string, error?: unknown) => void;

/**
 * The property of a test's services that holds their {@linkcode TestReporter}: a symbol, so a
 * test's `{ ...services, config }` keeps it (and may give its own, to read what is told).
 */
export const TEST_REPORTS: unique symbol = Symbol("channels.testReports");

/**
 * Tells the test `text` and `error`, when `services` are a test's and the log does not show a
 * line of `level` (what the log says already is not said twice).
 */
export function tellTest(
  services: object,
  text: string,
  { error, level = "error" }: { error?: unknown; level?: "warn" | "error" } = {},
): void {
  const report = (services as { [TEST_REPORTS]?: TestReporter })[TEST_REPORTS];
  if (report !== undefined && !log.shows(level)) report(text, error);
}
