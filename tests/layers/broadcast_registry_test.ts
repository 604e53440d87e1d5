/**
 * The registry a killed run of Workers left in the KV file is forgotten at the next start, all
 * of it and only it: another app's entries, and the app's own streams, stay.
 */
import { assertEquals } from "@std/assert";
import { forgetRegistry } from "../../layers/broadcast_registry.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";

Deno.test("forgetRegistry deletes every registry entry under its prefix, in batches, and nothing else", async () => {
  // The file through the store's handle, as the server forgets it, and through a second handle
  // that writes and reads as the Workers do.
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const store = await DenoKvStore.open(path);
  const kv = await Deno.openKv(path);
  try {
    const mine = "channels@/data/channels.kv";
    const other = "channels@/elsewhere/channels.kv";
    // More than one commit's worth: a crashed run of many rooms.
    for (let start = 0; start < 1200; start += 400) {
      const writing = kv.atomic();
      for (let n = start; n < start + 400; n++) {
        writing.set([mine, "groups", `chat.room-${n}`, "worker-1"], Date.now() + 30_000);
      }
      await writing.commit();
    }
    await kv.set([mine, "processes", "worker-1"], Date.now() + 30_000);
    await kv.set([mine, "listeners", "dice", "worker-1"], Date.now() + 30_000);
    await kv.set([other, "listeners", "dice", "worker-9"], Date.now() + 30_000);
    await kv.set([mine, "stream_meta", "chat.lobby"], { epoch: "e", offset: 3 });
    assertEquals(await forgetRegistry(store, mine), 1202);
    const left = [];
    for await (const entry of kv.list({ prefix: [] })) left.push(entry.key);
    assertEquals(left, [[mine, "stream_meta", "chat.lobby"], [
      other,
      "listeners",
      "dice",
      "worker-9",
    ]]);
  } finally {
    kv.close();
    store.close();
    await Deno.remove(path);
  }
});
