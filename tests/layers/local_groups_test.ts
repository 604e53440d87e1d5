/**
 * Joins and leaves while a group's first subscription is in flight (a Redis SUBSCRIBE takes a
 * round trip): each takes effect in the order it was asked for, and a subscription that fails
 * leaves no member behind in a group nobody subscribed to.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { LocalGroups } from "../../layers/local_groups.ts";
import { ProcessLayer } from "../../layers/_process_layer.ts";
import type { Transport } from "../../layers/_transport.ts";
import type { LayerEvent } from "../../layers/layer.ts";

/** Subscriptions that wait until the test settles them, with every call recorded. */
function heldSubscriptions() {
  const calls: string[] = [];
  const waiting: PromiseWithResolvers<void>[] = [];
  return {
    calls,
    /** Settles the oldest subscription still waiting. */
    settle(failure?: Error): void {
      const next = waiting.shift()!;
      if (failure) next.reject(failure);
      else next.resolve();
    },
    subscribe(group: string): Promise<void> {
      calls.push(`subscribe ${group}`);
      const held = Promise.withResolvers<void>();
      waiting.push(held);
      return held.promise;
    },
    unsubscribe(group: string): void {
      calls.push(`unsubscribe ${group}`);
    },
  };
}

function recorder(local: LocalGroups | ProcessLayer) {
  const got: string[] = [];
  const channel = local.newChannel((event: LayerEvent) => (got.push(event.type), true));
  return { channel, got };
}

Deno.test("a second member that joins and leaves while the first's subscription waits leaves the first in", async () => {
  const held = heldSubscriptions();
  const local = new LocalGroups({
    firstLocalMember: (g) => held.subscribe(g),
    lastLocalMemberLeft: (g) => held.unsubscribe(g),
  });
  const [first, second] = [recorder(local), recorder(local)];
  const joining = local.add("g", first.channel);
  await local.add("g", second.channel);
  await local.discard("g", second.channel);
  held.settle();
  assertEquals(await joining, true);
  assertEquals(local.deliverToGroup("g", { type: "hello" }).delivered, 1);
  assertEquals([first.got, second.got], [["hello"], []]);
  assertEquals(held.calls, ["subscribe g"], "the group was left while a member stayed");
});

Deno.test("one channel joining twice at once, then leaving, is out", async () => {
  const held = heldSubscriptions();
  const local = new LocalGroups({
    firstLocalMember: (g) => held.subscribe(g),
    lastLocalMemberLeft: (g) => held.unsubscribe(g),
  });
  const member = recorder(local);
  const joins = [local.add("g", member.channel), local.add("g", member.channel)];
  await joins[1];
  await local.discard("g", member.channel);
  held.settle();
  await Promise.all(joins);
  assertEquals(local.deliverToGroup("g", { type: "after-leave" }).delivered, 0);
  assertEquals(member.got, []);
  assertEquals(held.calls, ["subscribe g", "unsubscribe g"]);
});

Deno.test("a first subscription that fails takes out every join waiting on it; the next join subscribes again", async () => {
  const held = heldSubscriptions();
  const transport = {
    ...held,
    listen: () => Promise.resolve(),
    close: () => Promise.resolve(),
  } as unknown as Transport;
  const layer = new ProcessLayer(transport);
  const [first, second, third] = [recorder(layer), recorder(layer), recorder(layer)];
  const joins = [layer.groupAdd("g", first.channel), layer.groupAdd("g", second.channel)];
  held.settle(new Error("the registry could not be written"));
  for (const join of joins) await assertRejects(() => join, Error, "could not be written");
  assertEquals(layer.hasLocalMembers("g"), false, "a member was left in an unsubscribed group");
  const joining = layer.groupAdd("g", third.channel);
  held.settle();
  await joining;
  assertEquals(held.calls, ["subscribe g", "unsubscribe g", "subscribe g"]);
});
