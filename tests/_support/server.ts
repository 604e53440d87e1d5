/**
 * Test servers on port 0 with a throw-away data directory and quiet logs.
 *
 * @example
 * ```ts
 * await using server = await startTestServer({ rateLimit: { perSecond: 5, burst: 5 } });
 * const socket = await TestSocket.open(server.wsUrl("/ws/echo/"));
 * ```
 */
import { type Config, DEFAULT_CONFIG } from "../../server/config.ts";
import type { RunningServer } from "../../server/start.ts";
import { startSite } from "../../routes/start.ts";

/**
 * A configuration for tests: port 0, a fresh temporary data directory, silent logs, and fast
 * (weak) password hashing so sign-ups and log-ins do not cost 600,000 PBKDF2 rounds each.
 */
export async function testConfig(overrides: Partial<Config> = {}): Promise<Config> {
  const dataDir = overrides.dataDir ?? await Deno.makeTempDir({ prefix: "channels-test-" });
  return {
    ...DEFAULT_CONFIG,
    port: 0,
    logLevel: "silent",
    passwordIterations: TEST_PASSWORD_ITERATIONS,
    allowWeakPasswordHashing: true,
    ...overrides,
    dataDir,
  };
}

/** PBKDF2 iterations in tests (production refuses fewer than 600,000). */
export const TEST_PASSWORD_ITERATIONS = 1_000;

/** A running test server; `await using` shuts it down. */
export interface TestServer extends RunningServer {
  readonly config: Config;
  /** `ws://host:port` + `path`. */
  wsUrl(path: string): string;
  /** `http://host:port` + `path`. */
  httpUrl(path: string): string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a server for one test. Pass `dataDir` to reuse data across a restart. */
export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const config = await testConfig(overrides);
  const server = await startSite(config);
  const shutdown = async () => {
    await server.shutdown();
    // A directory the caller passed in is theirs (a restart test reuses it); ours goes.
    if (overrides.dataDir === undefined) {
      await Deno.remove(config.dataDir, { recursive: true }).catch(() => {});
    }
  };
  return {
    ...server,
    app: server.app,
    config,
    wsUrl: (path) => server.url.replace(/^http/, "ws") + path,
    httpUrl: (path) => server.url + path,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
