/** What the in-process streams' test files share: a store that `using` closes. */
import { DenoKvStore } from "../../../storage/deno_kv_store.ts";
import type { Store } from "../../../storage/store.ts";

/** An in-memory store that `using` closes. */
export async function openStore(): Promise<Store & Disposable> {
  const store = await DenoKvStore.open(":memory:");
  return Object.assign(store, { [Symbol.dispose]: () => store.close() });
}
