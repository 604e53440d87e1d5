import { presenceConformance } from "./conformance.ts";
import { assertDeadProcessExpires } from "./_dead_process.ts";
import { twoCores } from "../_two_processes.ts";
import { BroadcastLayer } from "../../../layers/broadcast.ts";
import { KvPresenceBackend } from "../../../layers/presence/kv.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
const dir = await Deno.makeTempDir({ prefix: "presence-kv-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// Two Workers: each its own BroadcastChannel layer, backend and tracker, over one KV file.
presenceConformance("deno kv", async (options) => {
  const prefix = `presence-${crypto.randomUUID().slice(0, 8)}`;
  const kvPath = `${dir}/${prefix}.kv`;
  return await twoCores(options, async () => ({
    layer: await BroadcastLayer.open({ prefix, kvPath }),
    backend: await KvPresenceBackend.open({ prefix, kvPath }),
  }));
}, { crossProcess: true });

Deno.test({
  name: "presence deno kv: a Worker that dies without a word loses its users after the TTL",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const kvPath = `${dir}/crash.kv`;
    const dying = await KvPresenceBackend.open({ prefix: "crash", kvPath, ttlMs: 300 });
    const survivor = await KvPresenceBackend.open({ prefix: "crash", kvPath, ttlMs: 300 });
    await assertDeadProcessExpires(dying, survivor);
  },
});
