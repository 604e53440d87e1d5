/** The Redis connection's state machine, driven through a fake client and a fake clock. */
import { assertEquals } from "@std/assert";
import {
  RedisConnectionMachine,
  type RedisProbe,
} from "../../storage/_redis_connection_machine.ts";
import { FakeClock } from "../layers/_fake_clock.ts";
import { log, type LogLevel } from "../../telemetry/log.ts";

/** A client whose PINGs the test answers, and the log lines the machine wrote. */
function harness() {
  const clock = new FakeClock();
  const pings: PromiseWithResolvers<unknown>[] = [];
  let restarts = 0;
  let restored = 0;
  const probe: RedisProbe & { isReady: boolean } = {
    isReady: false,
    ping() {
      const answer = Promise.withResolvers<unknown>();
      pings.push(answer);
      return answer.promise;
    },
    restart() {
      restarts++;
      probe.isReady = false;
    },
  };
  const machine = new RedisConnectionMachine(probe, {
    name: "presence",
    target: "redis://test",
    clock,
    probeTimeoutMs: 2000,
    onRestored: () => restored++,
  });
  const lines: string[] = [];
  log.setSink((line: string, _level: LogLevel) => lines.push(line));
  return {
    clock,
    machine,
    probe,
    pings,
    lines,
    lost: () => lines.filter((line) => line.includes("lost")).length,
    restoredLines: () => lines.filter((line) => line.includes("restored")).length,
    restarts: () => restarts,
    restoredCalls: () => restored,
    [Symbol.dispose]() {
      machine.close();
      log.setSink(null);
    },
  };
}

/** Lets promise callbacks run (the machine reacts to PING answers in microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("redis connection: a client's 'ready' is not enough; restored only once a PING is answered", async () => {
  using h = harness();
  h.machine.connected();
  assertEquals(h.machine.state, "ready");
  h.machine.failed(new Error("Socket closed unexpectedly"));
  assertEquals([h.machine.state, h.lost()], ["lost", 1]);
  h.machine.readied();
  assertEquals(h.machine.state, "restoring");
  assertEquals(h.restoredLines(), 0, "nothing is restored before Redis has answered");
  h.pings.at(-1)!.resolve("PONG");
  await settle();
  assertEquals([h.machine.state, h.lost(), h.restoredLines()], ["ready", 1, 1]);
  assertEquals(h.restoredCalls(), 1, "subscriptions are repaired once");
});

Deno.test("redis connection: the fault run's zombie (ready, but its socket died in the handshake) is restarted, and restored only when Redis is back", async () => {
  using h = harness();
  h.machine.connected();
  // Redis is going down: the socket drops, node-redis reconnects, the new socket dies during its
  // handshake, node-redis swallows the handshake's failure and says "ready" 1 ms later.
  h.machine.failed(new Error("Socket closed unexpectedly"));
  h.machine.failed(new Error("Socket closed unexpectedly"));
  h.probe.isReady = true;
  h.machine.readied();
  h.pings.at(-1)!.reject(new Error("Socket closed unexpectedly"));
  await settle();
  assertEquals(h.machine.state, "lost");
  assertEquals(h.restarts(), 1, "the zombie is restarted: it would never report again");
  assertEquals(h.restoredLines(), 0);
  // Still down: the next PING (on the backoff) fails while the client is reconnecting.
  h.clock.advance(1000); // past the backoff, short of the PING's timeout
  assertEquals(h.pings.length, 2);
  h.pings.at(-1)!.reject(new Error("The client is closed"));
  await settle();
  assertEquals([h.machine.state, h.restarts()], ["lost", 1]);
  // Redis is back.
  h.clock.advance(1000);
  h.pings.at(-1)!.resolve("PONG");
  await settle();
  assertEquals(h.machine.state, "ready");
  assertEquals([h.lost(), h.restoredLines()], [1, 1], "one 'lost' and one 'restored' per outage");
});

Deno.test("redis connection: a PING that is never answered times out and counts as failed", async () => {
  using h = harness();
  h.machine.connected();
  h.machine.failed(new Error("gone"));
  h.probe.isReady = true;
  h.machine.readied();
  h.clock.advance(1999);
  await settle();
  assertEquals(h.machine.state, "restoring");
  h.clock.advance(1);
  await settle();
  assertEquals([h.machine.state, h.restarts(), h.restoredLines()], ["lost", 1, 0]);
});

Deno.test("redis connection: every outage logs 'lost' and 'restored' exactly once", async () => {
  using h = harness();
  h.machine.connected();
  for (let outage = 1; outage <= 3; outage++) {
    for (let i = 0; i < 5; i++) h.machine.failed(new Error("ECONNREFUSED"));
    h.clock.advance(10_000); // backoff PINGs fail while Redis is away
    for (const ping of h.pings) ping.reject(new Error("The client is offline"));
    await settle();
    h.machine.readied();
    h.machine.failed(new Error("flap during restoring")); // the PING in flight is now outdated
    h.pings.at(-1)!.resolve("PONG");
    await settle();
    assertEquals(h.machine.state, "lost", "an answer on a socket that failed since is ignored");
    h.machine.readied();
    h.pings.at(-1)!.resolve("PONG");
    await settle();
    assertEquals(h.machine.state, "ready");
    assertEquals([h.lost(), h.restoredLines()], [outage, outage]);
  }
});

Deno.test("redis connection: calls that go unanswered while a PING is out neither cancel it nor push it back", async () => {
  using h = harness();
  h.machine.connected();
  h.probe.isReady = true;
  h.machine.unanswered(new Error("no answer within 3000 ms")); // a paused Redis, first seen
  assertEquals([h.machine.state, h.lost()], ["lost", 1]);
  h.clock.advance(100); // the first PING of the backoff
  assertEquals([h.machine.state, h.pings.length], ["restoring", 1]);
  // Each page's call of the stall times out meanwhile, one after another.
  for (let i = 0; i < 5; i++) h.machine.unanswered(new Error("no answer within 3000 ms"));
  assertEquals(h.machine.state, "restoring", "the PING in flight was cancelled");
  h.pings[0].resolve("PONG"); // Redis answers again
  await settle();
  assertEquals([h.machine.state, h.restoredLines(), h.lost()], ["ready", 1, 1]);
});

Deno.test("redis connection: a PING answered with an error (BUSY from a long script) is not a dead socket: no restart, no loop", async () => {
  using h = harness();
  h.machine.connected();
  h.probe.isReady = true;
  h.machine.unanswered(new Error("no answer within 3000 ms"));
  class ErrorReply extends Error {} // node-redis's class of Redis's own error answers
  // Up to the next PING of the backoff, answered at once (short of the PING's own timeout).
  const nextPing = () => {
    const sent = h.pings.length;
    while (h.pings.length === sent) h.clock.advance(50);
    return h.pings.at(-1)!;
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    nextPing().reject(new ErrorReply("BUSY Redis is busy running a script"));
    await settle();
  }
  assertEquals([h.machine.state, h.restarts()], ["lost", 0]);
  assertEquals(h.pings.length, 3, "one PING per backoff step, not a loop");
  nextPing().resolve("PONG");
  await settle();
  assertEquals(h.machine.state, "ready");
});

Deno.test("redis connection: a closed machine ignores its client and leaves no timer behind", () => {
  using h = harness();
  h.machine.connected();
  h.machine.failed(new Error("gone"));
  assertEquals(h.clock.pending, 1);
  h.machine.close();
  assertEquals(h.clock.pending, 0);
  h.machine.readied();
  h.machine.failed(new Error("again"));
  assertEquals([h.machine.state, h.lost(), h.clock.pending], ["closed", 1, 0]);
});
