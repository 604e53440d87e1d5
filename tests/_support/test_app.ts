/**
 * The site under test without a port: its real routes over in-memory services, upgraded by
 * the testing communicator's seam.
 *
 * @example
 * ```ts
 * await using app = await createTestApp();
 * const comm = new Communicator(app, "/ws/echo/");
 * ```
 */
import type { App, Config, GroupLayer, GroupStreams, Store } from "../../mod.ts";
import { createTestServices, testUpgrade } from "../../testing.ts";
import { createSite } from "../../routes/mod.ts";

/** The site with its layer and store in reach; `await using` closes everything. */
export interface TestApp extends App {
  readonly layer: GroupLayer;
  readonly store: Store;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Builds the site over in-memory backends (or the `layer`, `store` and `streams` given). */
export async function createTestApp(
  overrides: Partial<Config> = {},
  backends: { layer?: GroupLayer; store?: Store; streams?: GroupStreams } = {},
): Promise<TestApp> {
  const services = await createTestServices(overrides, backends);
  const app = createSite(services, { upgrade: testUpgrade });
  return {
    ...app,
    layer: services.layer,
    store: services.store,
    async [Symbol.asyncDispose]() {
      await app.close();
      await services[Symbol.asyncDispose]();
    },
  };
}
