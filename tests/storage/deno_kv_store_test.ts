import { assertRejects } from "@std/assert";
import { storeContract } from "./store_contract.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";

// Two handles on one file stand for two Workers (or processes) of one machine.
const dir = await Deno.makeTempDir({ prefix: "kv-store-" });
storeContract("deno kv store", () => DenoKvStore.open(`${dir}/store.kv`), { shared: true });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.test("a Deno KV file that cannot be opened is named in the error, with what to look at", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kv-open-" });
  try {
    const damaged = `${dir}/damaged.kv`;
    await Deno.writeTextFile(damaged, "not a database ".repeat(50));
    await assertRejects(
      () => DenoKvStore.open(damaged),
      Error,
      `Deno KV file ${damaged}: file is not a database (it is damaged: move it away`,
    );
    // A directory where the file should be: it cannot be made.
    await assertRejects(() => DenoKvStore.open(dir), Error, "may this process create and write");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
