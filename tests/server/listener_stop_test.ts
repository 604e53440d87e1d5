/**
 * Stopping the listener never waits forever: a graceful stop held up by a connection that
 * never finished its close is cut after a bounded wait, and one that finishes in time is not.
 */
import { assert, assertEquals } from "@std/assert";
import { stopListening } from "../../server/start.ts";
import { log } from "../../telemetry/log.ts";

const MS = 50;

Deno.test("a listener whose graceful stop never ends is cut, says so, and the stop goes on", async () => {
  const lines: string[] = [];
  log.setSink((line) => lines.push(line));
  try {
    const cut = new AbortController();
    const never = new Promise<void>(() => {});
    const started = performance.now();
    await stopListening(never, cut, MS);
    assert(cut.signal.aborted, "the open connections were cut");
    // Two bounded waits: before the cut and after it.
    assert(performance.now() - started >= 2 * MS - 5);
    assert(lines.some((line) => /WARN Shutdown: connections still open .*cutting them/.test(line)));
  } finally {
    log.setSink(null);
  }
});

Deno.test("a listener that stops once its connections are cut is waited for", async () => {
  log.setSink(() => {}); // its warning is the test above's
  const cut = new AbortController();
  const { promise, resolve } = Promise.withResolvers<void>();
  // It stops a while after the cut (its connections closing), within the second wait.
  cut.signal.addEventListener("abort", () => setTimeout(resolve, MS / 5));
  let stopped = false;
  void promise.then(() => stopped = true);
  await stopListening(promise, cut, MS).finally(() => log.setSink(null));
  assert(cut.signal.aborted);
  assert(stopped, "it returned before the listener stopped");
});

Deno.test("a listener that stops gracefully in time keeps its connections", async () => {
  const cut = new AbortController();
  await stopListening(Promise.resolve(), cut, MS);
  assertEquals(cut.signal.aborted, false);
});

// Seen in a full suite run: the listener finished closing just as the wait ran out, and
// `Deno.serve`'s abort listener threw BadResource (its resource was gone) as an uncaught error.
Deno.test("a cut that finds the listener already gone is not an uncaught error", async () => {
  log.setSink(() => {});
  const cut = new AbortController();
  const { promise, resolve } = Promise.withResolvers<void>();
  cut.signal.addEventListener("abort", () => {
    resolve();
    throw new Deno.errors.BadResource("Bad resource ID");
  });
  await stopListening(promise, cut, MS).finally(() => log.setSink(null));
  assert(cut.signal.aborted);
});
