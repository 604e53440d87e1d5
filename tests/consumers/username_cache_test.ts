import { assertEquals, assertRejects } from "@std/assert";
import { UsernameCache } from "../../consumers/username_cache.ts";
import { InMemoryLayer } from "../../layers/in_memory.ts";
import { ACCOUNT_EVENTS_GROUP } from "../../auth/users.ts";

class CountingDirectory {
  names = ["ada", "Cy"];
  reads = 0;
  usernames(): Promise<string[]> {
    this.reads++;
    return Promise.resolve([...this.names]);
  }
}

Deno.test("the username list is read once, then kept current by sign-up events", async () => {
  const layer = new InMemoryLayer();
  const directory = new CountingDirectory();
  const cache = new UsernameCache(directory, layer);
  assertEquals(await cache.usernames(), ["ada", "Cy"]);
  await layer.groupSend(ACCOUNT_EVENTS_GROUP, { type: "account.created", username: "Bob" });
  assertEquals(await cache.usernames(), ["ada", "Bob", "Cy"], "in the directory's order");
  assertEquals(directory.reads, 1);
  await layer.close();
});

Deno.test("the username list is read again once it is a minute old", async () => {
  const layer = new InMemoryLayer();
  const directory = new CountingDirectory();
  let now = 0;
  const cache = new UsernameCache(directory, layer, { now: () => now });
  await cache.usernames();
  directory.names.push("dee");
  now = 60_000;
  assertEquals(await cache.usernames(), ["ada", "Cy", "dee"]);
  assertEquals(directory.reads, 2);
  await layer.close();
});

Deno.test("many sockets connecting at once share one directory read", async () => {
  const layer = new InMemoryLayer();
  const directory = new CountingDirectory();
  const cache = new UsernameCache(directory, layer);
  const lists = await Promise.all(Array.from({ length: 50 }, () => cache.usernames()));
  assertEquals(lists.every((names) => names.length === 2), true);
  assertEquals(directory.reads, 1);
  await layer.close();
});

Deno.test("a sign-up subscription that failed is tried again, so the list works once the layer is back", async () => {
  const layer = new InMemoryLayer();
  const groupAdd = layer.groupAdd.bind(layer);
  let away = true; // the broker, at first
  layer.groupAdd = (group, channel) =>
    away ? Promise.reject(new Error("Broker away")) : groupAdd(group, channel);
  const cache = new UsernameCache(new CountingDirectory(), layer);
  await assertRejects(() => cache.usernames(), Error, "Broker away");
  assertEquals(layer.stats().channels, 0, "the failed subscription kept its channel");
  away = false;
  assertEquals(await cache.usernames(), ["ada", "Cy"]);
  await layer.groupSend(ACCOUNT_EVENTS_GROUP, { type: "account.created", username: "Bob" });
  assertEquals(await cache.usernames(), ["ada", "Bob", "Cy"], "sign-ups are heard again");
  await cache.close();
  await layer.close();
});
