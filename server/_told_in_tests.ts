/**
 * What a test is told that the log alone would say. A test's services (`createTestServices`)
 * silence the log so that its output stays clean; so an app's own bug in an HTTP handler (it
 * threw, or returned no `Response`) would leave nothing but a 500 page to go by. It is said on
 * the test's output instead, as a communicator raises what a consumer raised, and as Django's
 * test client raises a view's error.
 */
import { log } from "../telemetry/log.ts";

/** The services a test made (`createTestServices`). */
export const testServices: WeakSet<object> = new WeakSet();

/** Prints `text` and `error` on the test's output, when `services` are a test's and the log is silent. */
export function tellTest(services: object, text: string, error?: unknown): void {
  if (!testServices.has(services) || log.shows("error")) return;
  if (error === undefined) console.error(text);
  else console.error(text, error);
}
