import { streamConformance } from "./conformance.ts";
import { BroadcastLayer } from "../../../layers/broadcast.ts";
import { KvStreams } from "../../../layers/streams/kv.ts";
import { log } from "../../../telemetry/log.ts";

log.setLevel("error");
// Two processes with one prefix and one KV file stand for two Workers of one app.
const dir = await Deno.makeTempDir({ prefix: "kv-streams-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

streamConformance("kv streams", () => {
  const kvPath = `${dir}/${crypto.randomUUID().slice(0, 8)}.kv`;
  const prefix = "app";
  return Promise.resolve({
    open: async () => {
      const layer = await BroadcastLayer.open({ kvPath, prefix: `${prefix}@${kvPath}` });
      return { layer, streams: await KvStreams.open({ kvPath, prefix, layer }) };
    },
    lose: async () => {
      const kv = await Deno.openKv(kvPath);
      for await (const entry of kv.list({ prefix: [prefix] })) await kv.delete(entry.key);
      kv.close();
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  });
}, { shared: true });
