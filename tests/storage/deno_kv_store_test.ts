import { storeContract } from "./store_contract.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";

// Two handles on one file stand for two Workers (or processes) of one machine.
const dir = await Deno.makeTempDir({ prefix: "kv-store-" });
storeContract("deno kv store", () => DenoKvStore.open(`${dir}/store.kv`), { shared: true });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
