/**
 * Services for apps under test: an in-memory layer, presence and store, silent logs, and
 * fast password hashing; `await using` closes them.
 */
import type { Services } from "../server/context.ts";
import { TEST_REPORTS, type TestReporter } from "../server/_told_in_tests.ts";
import { type Config, DEFAULT_CONFIG, historyIdleMs } from "../server/config.ts";
import { createServices, type ServiceOptions } from "../server/services.ts";
import { InMemoryLayer } from "../layers/in_memory.ts";
import type { GroupLayer } from "../layers/layer.ts";
import type { PresenceTracker } from "../layers/presence/contract.ts";
import { createLocalPresence } from "../layers/presence/memory.ts";
import { DenoKvStore } from "../storage/deno_kv_store.ts";
import type { Store } from "../storage/store.ts";
import type { GroupStreams } from "../layers/streams/contract.ts";
import { MemoryStreams } from "../layers/streams/memory.ts";
import { log } from "../telemetry/log.ts";

/** Services that close their backends on `await using`. */
export interface TestServices extends Services {
  /** Closes the streams, presence, layer and store the services run on, including ones passed in. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** PBKDF2 iterations in tests (production refuses fewer than 600,000). */
const TEST_PASSWORD_ITERATIONS = 1_000;

/**
 * Services over in-memory backends; pass `layer`, `store`, `presence` or `streams` to share
 * yours. It sets the whole process's log level to `overrides.logLevel`, `"silent"` by default
 * (a test's output stays clean): a test that checks a log line passes `logLevel`, or sets the
 * level after this. Presence keeps the default grace (3 s, longer than a `receive()` waits):
 * a test of a leave passes `presenceGraceMs: 0`. An HTTP handler of the app's that throws or
 * returns no `Response`, and a channel worker's failure, are still said on the test's output
 * (with `console.error`).
 */
export async function createTestServices(
  overrides: Partial<Config> = {},
  backends: {
    layer?: GroupLayer;
    store?: Store;
    presence?: PresenceTracker;
    streams?: GroupStreams;
  } = {},
  options: ServiceOptions = {},
): Promise<TestServices> {
  const config: Config = {
    ...DEFAULT_CONFIG,
    logLevel: "silent",
    passwordIterations: TEST_PASSWORD_ITERATIONS,
    allowWeakPasswordHashing: true,
    ...overrides,
  };
  log.setLevel(config.logLevel);
  const layer = backends.layer ?? new InMemoryLayer();
  const store = backends.store ?? await DenoKvStore.open(":memory:");
  const presence = backends.presence ??
    createLocalPresence(layer, { graceMs: config.presenceGraceMs });
  const streams = backends.streams ??
    new MemoryStreams(layer, store, {
      retention: config.historyWindow,
      memoryBudget: config.historyMemoryMb * 1024 * 1024,
      idleExpiryMs: historyIdleMs(config),
    });
  const services = createServices(config, { layer, store, presence, streams }, options);
  const tested: TestServices = {
    ...services,
    async [Symbol.asyncDispose]() {
      await streams.close();
      await presence.close();
      await layer.close();
      store.close();
    },
  };
  // Not in the type: an app's test reads what is told on its output.
  const report: TestReporter = (text, error) =>
    error === undefined ? console.error(text) : console.error(text, error);
  Object.assign(tested, { [TEST_REPORTS]: report });
  return tested;
}
