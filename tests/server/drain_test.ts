/**
 * A drain on deploy without a network: when each socket closes (a fake clock, no sleeps), what
 * the live connections do while draining, and presence handed from a draining process to one
 * that stays, so a user who reconnects in time never shows offline.
 */
import { assert, assertEquals } from "@std/assert";
import { closeSpread, drainSchedule } from "../../server/drain.ts";
import { LiveConnections, type TrackedConnection } from "../../server/live_connections.ts";
import type { SocketLike } from "../../server/_socket.ts";
import { InMemoryLayer } from "../../layers/in_memory.ts";
import { PresenceCore } from "../../layers/presence/core.ts";
import { MemoryPresenceBackend } from "../../layers/presence/memory.ts";
import {
  PRESENCE_DIFF,
  PRESENCE_GROUP,
  type PresenceDiff,
} from "../../layers/presence/contract.ts";
import { FakeClock } from "../layers/_fake_clock.ts";
import { Inbox } from "../layers/_inbox.ts";
import { drainApp } from "../../server/_app_drain.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { log } from "../../telemetry/log.ts";

Deno.test("a drain closes sockets evenly over the window, the first at once", () => {
  assertEquals(drainSchedule(4, 1000), [0, 250, 500, 750]);
  assertEquals(drainSchedule(3, 0), [0, 0, 0]);
  assertEquals(drainSchedule(0, 1000), []);
});

Deno.test("ten sockets over one second: one every 100 ms, none early, all by the end", async () => {
  const clock = new FakeClock();
  const start = clock.now();
  const closedAt: number[] = [];
  const done = closeSpread([...Array(10).keys()], () => closedAt.push(clock.now() - start), {
    windowMs: 1000,
    clock,
  });
  assertEquals(closedAt, [0], "the first closes at once");
  clock.advance(99);
  assertEquals(closedAt.length, 1, "the second waits for its slot");
  clock.advance(1);
  assertEquals(closedAt.length, 2);
  clock.advance(800);
  assertEquals(closedAt, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
  await done;
  assertEquals(clock.pending, 0, "no timer is left behind");
});

Deno.test("thousands of sockets close in rounds, not one timer each, still spread", async () => {
  const clock = new FakeClock();
  const start = clock.now();
  const closedAt: number[] = [];
  const done = closeSpread([...Array(5000).keys()], () => closedAt.push(clock.now() - start), {
    windowMs: 5000,
    stepMs: 20,
    clock,
  });
  clock.advance(5000);
  await done;
  assertEquals(closedAt.length, 5000);
  const rounds = new Set(closedAt).size;
  assert(rounds <= 5000 / 20 + 1, `${rounds} rounds for a 20 ms step over 5 s`);
  const firstHalf = closedAt.filter((at) => at < 2500).length;
  assert(Math.abs(firstHalf - 2500) <= 25, `${firstHalf} of 5000 closed in the first half`);
});

Deno.test("a window of 0 closes every socket at once", async () => {
  const clock = new FakeClock();
  let closed = 0;
  await closeSpread([1, 2, 3], () => closed++, { windowMs: 0, clock });
  assertEquals(closed, 3);
});

Deno.test("a close that throws does not stop the drain; the error comes at the end", async () => {
  const clock = new FakeClock();
  const closed: number[] = [];
  const done = closeSpread([1, 2, 3], (n) => {
    closed.push(n);
    if (n === 1) throw new Error("boom");
  }, { windowMs: 300, clock });
  clock.advance(300);
  const error = await done.then(() => null, (error: Error) => error);
  assertEquals([closed, error?.message], [[1, 2, 3], "boom"]);
});

class FakeTracked implements TrackedConnection {
  closes: { code: number; at: number }[] = [];
  #done = Promise.withResolvers<void>();
  #listeners: (() => void)[] = [];
  readonly finished = this.#done.promise;
  constructor(readonly clock: FakeClock, readonly answers = true) {}
  close(code: number): void {
    this.closes.push({ code, at: this.clock.now() });
    if (this.answers) this.finish();
  }
  finish(): void {
    for (const listener of this.#listeners.splice(0)) listener();
    this.#done.resolve();
  }
  onFinished(listener: () => void): void {
    this.#listeners.push(listener);
  }
}

const socket = (): SocketLike => ({}) as SocketLike;

Deno.test("draining live connections: each closes with 1012 in its slot, a late one at once", async () => {
  const clock = new FakeClock();
  const live = new LiveConnections();
  const connections = [0, 1, 2, 3].map(() => new FakeTracked(clock));
  for (const connection of connections) live.track(connection, socket());
  const draining = live.closeAll(1012, "Service restart", { windowMs: 400, waitMs: 100, clock });
  clock.advance(150);
  // A handshake that was under way when the drain began.
  const late = new FakeTracked(clock);
  live.track(late, socket());
  assertEquals(late.closes.map((c) => c.code), [1012], "a socket opened during a drain closes");
  clock.advance(250);
  assertEquals(await draining, 0, "every connection finished");
  const start = connections[0].closes[0].at;
  assertEquals(connections.map((c) => c.closes.map(({ code, at }) => [code, at - start])), [
    [[1012, 0]],
    [[1012, 100]],
    [[1012, 200]],
    [[1012, 300]],
  ]);
  assertEquals(live.size, 0);
});

Deno.test("a drain waits only so long for a client that never answers its close frame", async () => {
  const clock = new FakeClock();
  const live = new LiveConnections();
  live.track(new FakeTracked(clock), socket());
  live.track(new FakeTracked(clock, false), socket());
  const draining = live.closeAll(1012, "Service restart", { windowMs: 200, waitMs: 1000, clock });
  clock.advance(200);
  await Promise.resolve();
  clock.advance(1000);
  assertEquals(await draining, 1, "one connection had not finished");
});

// Two trackers over one shared backend and one layer: two processes sharing Redis, as the
// core sees them. The draining one's backend must not wipe the shared state when it closes.
function twoProcesses(graceMs: number) {
  const clock = new FakeClock();
  const layer = new InMemoryLayer();
  const shared = new MemoryPresenceBackend();
  const draining = new PresenceCore(
    layer,
    { ...delegate(shared), close: () => Promise.resolve() },
    {
      graceMs,
      coalesceMs: 10,
      clock,
    },
  );
  const staying = new PresenceCore(layer, shared, { graceMs, coalesceMs: 10, clock });
  return { clock, layer, shared, draining, staying };
}

function delegate(backend: MemoryPresenceBackend) {
  return {
    add: backend.add.bind(backend),
    remove: backend.remove.bind(backend),
    onlineAmong: backend.onlineAmong.bind(backend),
    online: backend.online.bind(backend),
    list: backend.list.bind(backend),
  };
}

function diffs(inbox: Inbox): PresenceDiff[] {
  return inbox.events.filter((event) => event.type === PRESENCE_DIFF) as PresenceDiff[];
}

Deno.test("a drained user who reconnects to the other process in time never shows offline", async () => {
  const { clock, layer, shared, draining, staying } = twoProcesses(3000);
  const watcher = new Inbox(layer, 2000);
  await layer.groupAdd(PRESENCE_GROUP, watcher.channel);
  await draining.track("ada", "a1", { device: "laptop" });
  await draining.flush();
  await watcher.until(() => diffs(watcher).length === 1, "ada's join");
  // The drain closed ada's socket with 1012: grace, then the process hands her over.
  await draining.untrack("a1", { grace: true });
  clock.advance(1000);
  await draining.close({ handOver: true });
  await waitFor(() => shared.list().then((all) => all.length === 1), "ada kept in the backend");
  clock.advance(1000); // 2 s of her 3 s grace gone
  await staying.track("ada", "b1", { device: "laptop" });
  await staying.flush();
  clock.advance(5000);
  await staying.flush();
  assertEquals(diffs(watcher).map((d) => [d.joins, d.leaves]), [[["ada"], []]], "no leave");
  assertEquals((await shared.list()).map((c) => c.connectionId), ["b1"]);
  await staying.close();
});

Deno.test("a drained user who does not come back goes offline when the grace period ends", async () => {
  const { clock, layer, draining, staying } = twoProcesses(3000);
  const watcher = new Inbox(layer, 2000);
  await layer.groupAdd(PRESENCE_GROUP, watcher.channel);
  await draining.track("ada", "a1");
  await draining.track("bob", "a2"); // bob's socket was still open at the handover
  await draining.flush();
  await watcher.until(() => diffs(watcher).length === 1, "the joins");
  await draining.untrack("a1", { grace: true });
  clock.advance(1000);
  await draining.close({ handOver: true });
  await waitFor(() => staying.list().then((all) => Object.keys(all).length === 2), "adopted");
  clock.advance(1999);
  await staying.flush();
  assertEquals(diffs(watcher).length, 1, "nobody leaves before the grace period ends");
  clock.advance(1);
  await staying.flush();
  await watcher.until(() => diffs(watcher).length === 2, "ada's leave");
  assertEquals(diffs(watcher)[1].leaves, ["ada"]);
  clock.advance(1000); // bob's whole grace period, counted from the handover
  await staying.flush();
  await watcher.until(() => diffs(watcher).length === 3, "bob's leave");
  assertEquals(diffs(watcher)[2].leaves, ["bob"]);
  await staying.close();
});

Deno.test("a plain close (SIGINT) still ends the process's presence at once", async () => {
  const { clock, layer, draining, staying } = twoProcesses(3000);
  const watcher = new Inbox(layer, 2000);
  await layer.groupAdd(PRESENCE_GROUP, watcher.channel);
  await draining.track("ada", "a1");
  await draining.flush();
  await draining.untrack("a1", { grace: true });
  await draining.close();
  clock.advance(0);
  await watcher.until(() => diffs(watcher).some((d) => d.leaves.includes("ada")), "ada's leave");
  await staying.close();
});

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

Deno.test("a drain whose presence backend is away says its presence was not handed over, not that it was", async () => {
  await using services = await createTestServices();
  using captured = new CapturedLog();
  log.setLevel("info"); // after the services, which silence it
  using _silent = { [Symbol.dispose]: () => log.setLevel("silent") };
  const clock = new FakeClock();
  const layer = new InMemoryLayer();
  const shared = new MemoryPresenceBackend();
  const presence = new PresenceCore(
    layer,
    { ...delegate(shared), close: () => Promise.resolve() },
    { graceMs: 3000, coalesceMs: 10, clock },
  );
  await presence.track("ada", "a1");
  await presence.flush();
  // Then Redis goes away, as the drain begins: the hand-over's publish fails.
  const groupSend = layer.groupSend.bind(layer);
  layer.groupSend = () => Promise.reject(new Error("Redis is unreachable"));
  const config = { ...services.config, layer: "redis" as const };
  await drainApp(new LiveConnections(), { ...services, config, presence }, undefined, 0);
  const said = captured.lines.filter((line) => line.includes("Drain: presence"));
  assertEquals(said.length, 1, captured.lines.join("\n"));
  assert(said[0].includes("not published"), said[0]);
  assert(!said[0].includes("handed over to the other processes"), said[0]);
  // A backend that answers: handed over, as said.
  layer.groupSend = groupSend;
  captured.lines.length = 0;
  const answering = new PresenceCore(
    layer,
    { ...delegate(shared), close: () => Promise.resolve() },
    { graceMs: 3000, coalesceMs: 10, clock },
  );
  await answering.track("bob", "b1");
  await drainApp(new LiveConnections(), { ...services, config, presence: answering }, undefined, 0);
  assert(captured.lines.some((line) => line.includes("Drain: presence handed over")));
});
