import { layerConformance } from "./conformance.ts";
import { BroadcastLayer } from "../../layers/broadcast.ts";
import { log } from "../../server/log.ts";

log.setLevel("error"); // the overflow case logs a warning by design
// Two layers with one prefix and one KV file stand for two Workers of one app.
const dir = await Deno.makeTempDir({ prefix: "broadcast-layer-" });
const prefix = `conformance-${crypto.randomUUID().slice(0, 8)}`;
layerConformance(
  "broadcast layer",
  () => BroadcastLayer.open({ prefix, kvPath: `${dir}/registry.kv` }),
  { shared: true },
);
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
