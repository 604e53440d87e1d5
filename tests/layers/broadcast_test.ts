import { layerConformance } from "./conformance.ts";
import { assertEquals } from "@std/assert";
import { BroadcastLayer } from "../../layers/broadcast.ts";
import { BroadcastTransport } from "../../layers/broadcast_transport.ts";
import type { Memberships } from "../../layers/_transport.ts";
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

Deno.test("broadcast transport: sends made together share one registry reading", async () => {
  const kv = await Deno.openKv(":memory:");
  let listings = 0;
  const counting = new Proxy(kv, {
    get(target, property) {
      if (property === "list") {
        return (...args: Parameters<Deno.Kv["list"]>) => {
          listings++;
          return target.list(...args);
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const transport = new BroadcastTransport(counting, { prefix: "p", groupExpiryMs: 30_000 });
  await transport.remember("room", "other-worker!1");
  // A burst, as a busy room sends them: all before the first reading has answered.
  const published = await Promise.all(
    Array.from({ length: 50 }, () => transport.publishToGroup("room", { type: "x" }, "self")),
  );
  const counts = await Promise.all(published.map((p) => p.remoteProcesses));
  assertEquals(counts, Array(50).fill(1));
  assertEquals(listings, 1, `${listings} readings of the registry for one burst`);
  const none: Memberships = { groups: () => [], members: () => [] };
  await transport.close(none);
});
