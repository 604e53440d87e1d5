import { assertEquals } from "@std/assert";
import { presenceConformance } from "./conformance.ts";
import { twoProcesses } from "../_two_processes.ts";
import { BroadcastLayer } from "../../../layers/broadcast.ts";
import { KvPresenceBackend } from "../../../layers/presence/kv.ts";
import { PresenceCore } from "../../../layers/presence/core.ts";
import { RECONCILE_EVERY_MS } from "../../../layers/presence/_shared.ts";
import { log } from "../../../server/log.ts";

log.setLevel("error");
const dir = await Deno.makeTempDir({ prefix: "presence-kv-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// Two Workers: each its own BroadcastChannel layer, backend and tracker, over one KV file.
presenceConformance("deno kv", async (options) => {
  const prefix = `presence-${crypto.randomUUID().slice(0, 8)}`;
  const kvPath = `${dir}/${prefix}.kv`;
  const open = async () => {
    const layer = await BroadcastLayer.open({ prefix, kvPath });
    const backend = await KvPresenceBackend.open({ prefix, kvPath });
    return {
      layer,
      tracker: new PresenceCore(layer, backend, {
        ...options,
        reconcileEveryMs: RECONCILE_EVERY_MS,
      }),
    };
  };
  return await twoProcesses(open);
}, { crossProcess: true });

Deno.test({
  name: "presence deno kv: a Worker that dies without a word loses its users after the TTL",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const kvPath = `${dir}/crash.kv`;
    const dying = await KvPresenceBackend.open({ prefix: "crash", kvPath, ttlMs: 300 });
    const survivor = await KvPresenceBackend.open({ prefix: "crash", kvPath, ttlMs: 300 });
    const changed = Promise.withResolvers<string[]>();
    const changedInRoom = Promise.withResolvers<string[]>();
    survivor.watch((users, topic) => {
      if (topic === "site") changed.resolve(users);
      else if (topic === "chat.lobby") changedInRoom.resolve(users);
    });
    await dying.add({ username: "ghost", connectionId: "c1", meta: {} });
    await dying.add({ username: "ghost", connectionId: "c3", meta: {}, topic: "chat.lobby" });
    await survivor.add({ username: "alive", connectionId: "c4", meta: {}, topic: "chat.lobby" });
    await survivor.add({ username: "alive", connectionId: "c2", meta: {} });
    assertEquals((await survivor.online()).sort(), ["alive", "ghost"]);
    await dying.close();
    assertEquals(await changed.promise, ["ghost"]);
    assertEquals(await changedInRoom.promise, ["ghost"], "the room's ghost expires too");
    assertEquals(await survivor.online(), ["alive"]);
    assertEquals(await survivor.online("chat.lobby"), ["alive"]);
    await survivor.close();
  },
});
