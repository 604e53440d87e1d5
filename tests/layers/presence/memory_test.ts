import { assertEquals, assertRejects } from "@std/assert";
import { InMemoryLayer } from "../../../layers/in_memory.ts";
import type { LayerEvent, SendResult } from "../../../layers/layer.ts";
import {
  PRESENCE_DIFF,
  PRESENCE_GROUP,
  type PresenceDiff,
} from "../../../layers/presence/contract.ts";
import { createLocalPresence, MemoryPresenceBackend } from "../../../layers/presence/memory.ts";
// From the public API: a backend of one's own is built on it (see the README).
import { PresenceCore } from "../../../mod.ts";
import { log } from "../../../telemetry/log.ts";
import { CapturedLog } from "../../_support/captured_log.ts";
import { FakeClock } from "../_fake_clock.ts";
import { Inbox } from "../_inbox.ts";
import { presenceConformance } from "./conformance.ts";

presenceConformance("in-process", (options) => {
  const layer = new InMemoryLayer();
  const tracker = createLocalPresence(layer, options);
  return Promise.resolve({
    tracker,
    layer,
    async [Symbol.asyncDispose]() {
      await tracker.close();
      await layer.close();
    },
  });
});

// Two trackers over one backend and one layer: how two processes sharing Redis look to the
// shared core, so the cross-process tests also run without a broker.
presenceConformance("two cores over shared state", (options) => {
  const layer = new InMemoryLayer();
  const backend = new MemoryPresenceBackend();
  const tracker = new PresenceCore(layer, backend, options);
  const peer = new PresenceCore(layer, backend, options);
  return Promise.resolve({
    tracker,
    layer,
    peer: { tracker: peer, layer },
    async [Symbol.asyncDispose]() {
      await tracker.close();
      await peer.close();
      await layer.close();
    },
  });
}, { crossProcess: true });

Deno.test("a storm of 500 joins reaches subscribers as a handful of diffs", async () => {
  const clock = new FakeClock();
  const layer = new InMemoryLayer();
  const tracker = createLocalPresence(layer, { graceMs: 1000, coalesceMs: 50, clock });
  const inbox = new Inbox(layer, 1000);
  await layer.groupAdd(PRESENCE_GROUP, inbox.channel);
  // 500 joins spread over 2 s of (fake) time: one every 4 ms.
  for (let i = 0; i < 500; i++) {
    await tracker.track(`user${i}`, `c${i}`);
    clock.advance(4);
  }
  clock.advance(50);
  await inbox.until(() => inbox.count(PRESENCE_DIFF) > 0 && joined(inbox) === 500, "500 joins");
  assertEquals(inbox.count(PRESENCE_DIFF) <= 2000 / 50 + 1, true, "at most one diff per window");
  await tracker.close();
  await layer.close();
});

Deno.test("a diff that could not be published is sent again later", async () => {
  log.setLevel("silent");
  const clock = new FakeClock();
  const layer = new FlakyLayer();
  const tracker = createLocalPresence(layer, { graceMs: 1000, coalesceMs: 50, clock });
  const inbox = new Inbox(layer, 1000);
  await layer.groupAdd(PRESENCE_GROUP, inbox.channel);
  layer.failures = 1;
  await tracker.track("ada", "c1");
  await assertRejects(() => tracker.flush(), Error, "Broker away");
  assertEquals(inbox.count(PRESENCE_DIFF), 0);
  clock.advance(1000);
  await inbox.receives(PRESENCE_DIFF);
  assertEquals((inbox.events[0] as PresenceDiff).joins, ["ada"]);
  await tracker.close();
  await layer.close();
});

Deno.test("a closed tracker leaves no timer behind", async () => {
  const clock = new FakeClock();
  const layer = new InMemoryLayer();
  const tracker = createLocalPresence(layer, { graceMs: 1000, clock });
  await tracker.track("ada", "c1");
  await tracker.track("bob", "c2");
  await tracker.untrack("c2", { grace: true });
  await tracker.close();
  assertEquals(clock.pending, 0);
  await layer.close();
});

Deno.test("the memory backend counts a user once however many connections they have", async () => {
  const backend = new MemoryPresenceBackend();
  await backend.add({ username: "ada", connectionId: "a", meta: {} });
  await backend.add({ username: "ada", connectionId: "b", meta: {} });
  await backend.add({ username: "ada", connectionId: "b", meta: { again: true } });
  assertEquals(await backend.online(), ["ada"]);
  await backend.remove([{ username: "ada", connectionId: "a", meta: {} }]);
  assertEquals([...await backend.onlineAmong(["ada", "bob"])], ["ada"]);
  await backend.remove([{ username: "ada", connectionId: "b", meta: {} }]);
  await backend.remove([{ username: "ada", connectionId: "b", meta: {} }]);
  assertEquals(await backend.online(), []);
});

function joined(inbox: Inbox): number {
  return (inbox.events as PresenceDiff[]).reduce((sum, diff) => sum + diff.joins.length, 0);
}

/** An in-memory layer whose group sends fail while `failures` is above zero. */
class FlakyLayer extends InMemoryLayer {
  failures = 0;

  override groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error("Broker away"));
    }
    return super.groupSend(group, event);
  }
}

Deno.test("a process that closes while it takes over another's connections lets the takeover finish first", async () => {
  // `--workers` drain all at once: a Worker gets a sibling's handover as it closes itself.
  using captured = new CapturedLog();
  const layer = new InMemoryLayer();
  const adding = Promise.withResolvers<void>();
  const added = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const order: string[] = [];
  let closed = false;
  // A backend whose writes take a while, and which refuses them once closed, as Deno KV does.
  const slow = new (class extends MemoryPresenceBackend {
    override async add(connection: Parameters<MemoryPresenceBackend["add"]>[0]) {
      adding.resolve();
      try {
        await gate.promise;
        if (closed) throw new TypeError("Database is closed.");
        return await super.add(connection);
      } finally {
        order.push("write ended");
        added.resolve();
      }
    }
    override close() {
      closed = true;
      order.push("closed");
      gate.resolve(); // what waits fails now
      return super.close();
    }
  })();
  const draining = new PresenceCore(layer, new MemoryPresenceBackend(), { graceMs: 5000 });
  const closing = new PresenceCore(layer, slow, { graceMs: 5000 });
  await draining.track("ada", "c1");
  await draining.close({ handOver: true });
  await adding.promise; // the takeover writes to the backend
  const closed$ = closing.close();
  // The write ends on the next task, unless the close ended it first.
  setTimeout(() => gate.resolve(), 0);
  await Promise.all([closed$, added.promise]);
  // Else: "Presence could not take over a draining process's connections: Database is closed".
  assertEquals(order, ["write ended", "closed"]);
  assertEquals(captured.lines.filter((line) => line.includes("could not take over")), []);
  await layer.close();
});

Deno.test("a takeover whose backend write never ends holds up a close for a second at most", async () => {
  using _captured = new CapturedLog();
  const clock = new FakeClock();
  const layer = new InMemoryLayer();
  const adding = Promise.withResolvers<void>();
  // A backend that stopped answering (a black-holed Redis connection) as the takeover writes.
  const stuck = new (class extends MemoryPresenceBackend {
    override add(): Promise<void> {
      adding.resolve();
      return new Promise(() => {});
    }
  })();
  const draining = new PresenceCore(layer, new MemoryPresenceBackend(), { graceMs: 5000, clock });
  const closing = new PresenceCore(layer, stuck, { graceMs: 5000, clock });
  await draining.track("ada", "c1");
  await draining.close({ handOver: true });
  await adding.promise;
  let closed = false;
  const closed$ = closing.close().then(() => closed = true);
  // One turn of the event loop: the close runs up to its wait (its steps before are promises).
  await new Promise((resolve) => setTimeout(resolve, 0));
  clock.advance(999);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(closed, false, "the close did not wait for the takeover at all");
  clock.advance(1);
  await closed$;
  await layer.close();
});

Deno.test("a track that fails leaves nothing of it behind: its close has nothing to publish for it", async () => {
  const layer = new InMemoryLayer();
  const tracker = createLocalPresence(layer, { graceMs: 0 });
  using captured = new CapturedLog();
  log.setLevel("warn");
  try {
    // A topic the layer refuses as a group name (a lone surrogate): the track fails.
    await assertRejects(() => tracker.track("carol", "c1", {}, "notes.\ud800"));
    await tracker.close();
    assertEquals(captured.lines, []);
  } finally {
    log.setLevel("silent");
    await layer.close();
  }
});

Deno.test("connections the backend cannot remove (it is away) are told in one line a minute, with how many", async () => {
  using captured = new CapturedLog();
  log.setLevel("warn");
  const clock = new FakeClock();
  const layer = new InMemoryLayer();
  const away = new (class extends MemoryPresenceBackend {
    override remove(): Promise<void> {
      return Promise.reject(new Error("The client is offline"));
    }
  })();
  const tracker = new PresenceCore(layer, away, { graceMs: 1000, clock });
  const warned = () =>
    captured.lines.filter((line) => line.includes("Presence could not remove"))
      .map((line) => line.slice(line.indexOf("WARN ") + "WARN ".length));
  const first = "Presence could not remove a connection: The client is offline";
  for (let i = 0; i < 5; i++) await tracker.track(`user${i}`, `c${i}`);
  for (let i = 0; i < 5; i++) await tracker.untrack(`c${i}`, { grace: true });
  clock.advance(1000); // every grace ends: five removals fail
  await tracker.flush().catch(() => {});
  assertEquals(warned(), [first]);
  await tracker.track("late", "c9");
  await tracker.untrack("c9", { grace: true });
  clock.advance(60_000); // a minute on: the next line says how many there were
  await tracker.flush().catch(() => {});
  assertEquals(warned(), [
    first,
    "Presence could not remove 5 connections within a minute: The client is offline",
  ]);
  await tracker.close().catch(() => {});
  log.setLevel("silent");
  await layer.close();
});
