import { layerConformance } from "./conformance.ts";
import { assertEquals } from "@std/assert";
import { BroadcastLayer } from "../../layers/broadcast.ts";
import { BroadcastTransport } from "../../layers/broadcast_transport.ts";
import type { TransportInbox } from "../../layers/_transport.ts";
import { log } from "../../telemetry/log.ts";

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

/** A Worker with members of `groups`, on the registry in `path`: what the counts are read from. */
async function otherWorker(path: string, groups: string[]): Promise<BroadcastTransport> {
  const other = new BroadcastTransport(await Deno.openKv(path), { prefix: "p" });
  const inbox: TransportInbox = {
    processId: "other-worker",
    groupEvent: () => {},
    groupGap: () => {},
    channelEvent: () => {},
    namedEvent: () => true,
    namedReady: () => Promise.resolve(),
  };
  await other.listen(inbox);
  for (const group of groups) await other.subscribe(group);
  return other;
}

Deno.test("broadcast transport: sends made together share one registry reading", async () => {
  const path = `${dir}/burst.kv`;
  const other = await otherWorker(path, ["room"]);
  const kv = await Deno.openKv(path);
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
  const transport = new BroadcastTransport(counting, { prefix: "p" });
  // A burst, as a busy room sends them: all before the first reading has answered.
  const published = await Promise.all(
    Array.from({ length: 50 }, () => transport.publishToGroup("room", { type: "x" }, "self")),
  );
  const counts = await Promise.all(published.map((p) => p.remoteProcesses));
  assertEquals(counts, Array(50).fill(1));
  assertEquals(listings, 1, `${listings} readings of the registry for one burst`);
  await transport.close();
  await other.close();
});

Deno.test("broadcast transport: a send to a channel counts its Worker while it lives", async () => {
  const path = `${dir}/alive.kv`;
  const event = { type: "x" };
  const other = await otherWorker(path, []);
  const before = new BroadcastTransport(await Deno.openKv(path), { prefix: "p" });
  assertEquals(await before.sendToProcess("other-worker", "other-worker!1", event), 1);
  await before.close();
  await other.close();
  const after = new BroadcastTransport(await Deno.openKv(path), { prefix: "p" });
  assertEquals(await after.sendToProcess("other-worker", "other-worker!1", event), 0);
  await after.close();
});

Deno.test("broadcast layer: a send to another Worker's full worker queue is told it was dropped", async () => {
  const path = `${dir}/full.kv`;
  const sender = await BroadcastLayer.open({ prefix: "full", kvPath: path });
  const receiver = await BroadcastLayer.open({ prefix: "full", kvPath: path });
  try {
    let room = 1; // the receiving worker takes one event, then is full
    const unlisten = await receiver.listen("jobs", () => room-- > 0);
    assertEquals(await sender.send("jobs", { type: "job" }), {
      delivered: 0,
      dropped: 0,
      remoteProcesses: 1,
    });
    assertEquals(await sender.send("jobs", { type: "job" }), {
      delivered: 0,
      dropped: 1,
      remoteProcesses: 1,
    });
    await unlisten();
  } finally {
    await sender.close();
    await receiver.close();
  }
});
