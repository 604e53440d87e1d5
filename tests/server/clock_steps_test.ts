/**
 * The wall clock may be stepped while the server runs (NTP, a resumed VM, an operator's
 * `date -s`). What the server measures as a duration within one process reads the monotonic
 * clock, so a step neither fails a healthy connection nor keeps a misbehaving one. Each test
 * here steps `Date.now` and checks that nothing a client or an operator sees changes.
 */
import { assert, assertEquals } from "@std/assert";
import { closeOnNextTurn, QUIET_WAIT_AT_MOST_MS } from "../../server/_socket_close.ts";
import { watchDrain } from "../../server/_drain_watch.ts";
import { RespConnection } from "../../layers/_resp_connection.ts";
import { RedisConnectionMachine } from "../../storage/_redis_connection_machine.ts";
import { redisHealth, trackRedisConnection } from "../../storage/redis_health.ts";
import { redisAvailability, startRedisServer } from "../_support/redis.ts";
import type { SocketLike } from "../../server/_socket.ts";
import type { Scope } from "../../server/consumer.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("error");
const redis = await redisAvailability({ privateServer: true });

/** Runs `body` with `Date.now` offset by what `step` holds at each call. */
async function withSteppedClock(body: (step: { ms: number }) => Promise<void>): Promise<void> {
  const realNow = Date.now;
  const step = { ms: 0 };
  Date.now = () => realNow() + step.ms;
  try {
    await body(step);
  } finally {
    Date.now = realNow;
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a socket refused for flooding is closed within its bound though the clock went back", async () => {
  await withSteppedClock(async (step) => {
    let closed!: () => void;
    const closedNow = new Promise<void>((resolve) => closed = resolve);
    const socket = {
      readyState: WebSocket.OPEN,
      bufferedAmount: 0,
      onopen: null,
      onmessage: null as ((event: MessageEvent) => void) | null,
      onclose: null,
      onerror: null,
      send() {},
      close() {
        this.readyState = WebSocket.CLOSED;
        closed();
      },
    };
    const started = performance.now();
    closeOnNextTurn(socket as unknown as SocketLike, {
      code: 1008,
      reason: "Too many messages",
      scope: { path: "/ws/flood/", client: ["127.0.0.1", 1] } as unknown as Scope,
      sent: () => {},
    }, true);
    socket.onmessage?.(new MessageEvent("message", { data: "more" })); // it still sends
    step.ms = -60_000; // and the clock goes back a minute
    let timer: ReturnType<typeof setTimeout> | undefined;
    const inTime = await Promise.race([
      closedNow.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 5_000)),
    ]);
    clearTimeout(timer);
    const took = performance.now() - started;
    assert(inTime, "not closed 5 s after the refusal");
    assert(took < QUIET_WAIT_AT_MOST_MS * 2, `closed after ${took} ms`);
  });
});

Deno.test("a client that reads, however slowly, is not closed as stalled when the clock jumps", async () => {
  await withSteppedClock(async (step) => {
    let unsent = 1_000_000;
    let stalled = false;
    let done = false;
    let closedAsStalled!: () => void;
    const whenStalled = new Promise<void>((resolve) => closedAsStalled = resolve);
    const reading = setInterval(() => unsent -= 10_000, 50); // 10 kB every 50 ms
    watchDrain({}, {
      live: () => !done,
      unsentBytes: () => unsent,
      hadRoom: () => false,
      caughtUp: () => false,
      resume: () => false,
      stalled: () => {
        stalled = true;
        closedAsStalled();
      },
      done: () => void (done = true),
    }, 1);
    await delay(150);
    step.ms = 40_000; // 40 s forward: far more than its 1 s without reading
    await delay(300);
    clearInterval(reading);
    assertEquals(stalled, false, "closed as stalled while it read");
    // It still works: a reader that stops is closed once it has read nothing for its second.
    const stoppedAt = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      whenStalled.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 10_000)),
    ]);
    clearTimeout(timer);
    done = true;
    assert(closed, "a reader that stopped was not closed as stalled");
    assert(performance.now() - stoppedAt >= 900, "closed as stalled before its second");
  });
});

Deno.test({
  name: "a Redis command answered in time is not failed when the clock jumps forward",
  ignore: !redis.available,
  fn: async () => {
    await using server = await startRedisServer();
    const conn = await RespConnection.open(server.url, { name: "clock steps" });
    try {
      await withSteppedClock(async (step) => {
        // Redis answers this after 1 s, within the 3 s the connection waits for an answer.
        const reply = conn.call(["BLPOP", "clock-steps-empty", "1"]);
        await delay(100);
        step.ms = 10_000;
        assertEquals(await reply, null);
        assertEquals(conn.up, true);
      });
    } finally {
      await conn.close();
    }
  },
});

Deno.test("the Redis down-seconds counter never goes down, even with a clock that went back", async () => {
  let now = 1_800_000_000_000;
  const machine = new RedisConnectionMachine(
    { ping: () => Promise.resolve("PONG"), isReady: true },
    {
      name: "clock steps",
      target: "redis://127.0.0.1:1",
      clock: {
        setTimeout,
        clearTimeout: (handle) => clearTimeout(handle as number),
        now: () => now,
      },
    },
  );
  const untrack = trackRedisConnection(machine);
  try {
    machine.connected();
    machine.failed(new Error("ECONNRESET"));
    now -= 60_000; // the outage's clock went back a minute
    machine.readied();
    while (machine.state !== "ready") await delay(1);
    assertEquals(machine.downMsRestored, 0);
    const health = redisHealth(now).find((entry) => entry.connection === "clock steps");
    assertEquals(health?.downSeconds, 0);
  } finally {
    untrack();
    machine.close();
  }
});
