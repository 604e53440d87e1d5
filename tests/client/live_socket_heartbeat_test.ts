/** The live socket's heartbeat: dead or quiet connections, late pages, clock steps, bad times. */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { LiveSocket, PING_FRAME } from "../../client/live_socket.js";
import {
  PING_FRAME as SERVER_PING,
  PONG_FRAME as PONG,
} from "../../server/_connection_constants.ts";
import { open } from "./_fake_socket.ts";
import { client } from "./_live_socket_support.ts";

Deno.test("heartbeat: a connection that died without a close is taken as lost and made again", async () => {
  const { live, sockets, states } = client({ heartbeat: { idleMs: 20, timeoutMs: 20 } });
  live.start();
  const silent = await sockets.next();
  open(silent);
  // Nothing comes back, not even the answer to the ping: a new socket is the proof.
  const next = await sockets.next();
  assertEquals(silent.sent, [PING_FRAME]);
  assertEquals(silent.closedWith, 4000);
  assert(states.some((state) => state.startsWith("reconnecting: Connection lost")), `${states}`);
  open(next);
  live.stop();
});

Deno.test("heartbeat: an attempt no server answers is given up and made again", async () => {
  const closes: unknown[] = [];
  const { live, sockets } = client({
    heartbeat: { idleMs: 10, timeoutMs: 10 },
    onClose: (event) => void closes.push({ ...event }),
  });
  live.start();
  const unanswered = await sockets.next(); // never opens, never closes
  const next = await sockets.next();
  assertEquals(unanswered.closedWith, 1000);
  assertEquals(closes, [{ code: 1006, reason: "No answer from the server", wasClean: false }]);
  open(next);
  assertEquals(live.isOpen, true);
  live.stop();
});

Deno.test("heartbeat: a quiet connection whose pings are answered stays open", async () => {
  const received: unknown[] = [];
  const { live, sockets } = client({
    heartbeat: { idleMs: 10, timeoutMs: 10 },
    onFrame: (frame) => received.push(frame),
  });
  live.start();
  const socket = await sockets.next();
  socket.send = (data: string) => {
    socket.sent.push(data);
    if (data === PING_FRAME) queueMicrotask(() => socket.onmessage?.({ data: PONG }));
  };
  open(socket);
  // Ten times the time a dead connection takes to be given up: nothing may happen.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert(socket.sent.length >= 2, `only ${socket.sent.length} ping(s) in 200 ms`);
  assertEquals([live.isOpen, sockets.waiting, received], [true, 0, []]);
  live.stop();
});

Deno.test("heartbeat: the client's ping is the very frame the server answers", () => {
  // Written in both (the browser module cannot import the server): they must not drift apart.
  assertEquals(PING_FRAME, SERVER_PING);
});

/**
 * A clock the test moves by hand: the timer functions and `Date.now` are swapped for the
 * test's own while `run` runs, so a heartbeat of 35 s is checked to the millisecond without
 * waiting for it.
 */
async function withManualClock(
  run: (clock: { now: number; advanceTo(ms: number): void }) => Promise<void>,
) {
  const real = { setTimeout, clearTimeout, setInterval, clearInterval, now: Date.now };
  type Timer = { at: number; every: number | null; callback: () => void };
  const timers = new Map<number, Timer>();
  let nextId = 1;
  const clock = {
    now: 0,
    // Fires what is due in time order, each at its own time; a timer set by one fires too.
    advanceTo(ms: number) {
      for (;;) {
        let due: [number, Timer] | undefined;
        for (const entry of timers) {
          if (entry[1].at <= ms && (!due || entry[1].at < due[1].at)) due = entry;
        }
        if (due === undefined) break;
        const [id, timer] = due;
        if (timer.every === null) timers.delete(id);
        clock.now = Math.max(clock.now, timer.at);
        if (timer.every !== null) timer.at += Math.max(1, timer.every);
        timer.callback();
      }
      clock.now = ms;
    },
  };
  const set = (every: boolean) => (callback: () => void, delay = 0) => {
    timers.set(nextId, {
      at: clock.now + Math.max(0, delay),
      every: every ? delay : null,
      callback,
    });
    return nextId++;
  };
  const clear = (id?: number) => void timers.delete(id ?? 0);
  Object.assign(globalThis, {
    setTimeout: set(false),
    setInterval: set(true),
    clearTimeout: clear,
    clearInterval: clear,
  });
  Date.now = () => clock.now;
  // The heartbeat reads the monotonic clock: it moves with the manual one too.
  Object.defineProperty(performance, "now", { value: () => clock.now, configurable: true });
  try {
    await run(clock);
  } finally {
    const { now, ...timerFunctions } = real;
    Object.assign(globalThis, timerFunctions);
    Date.now = now;
    delete (performance as { now?: unknown }).now; // Performance.prototype's again
  }
}

Deno.test("heartbeat: a dead server is noticed idleMs + timeoutMs after its last frame, not later", async () => {
  await withManualClock(async (clock) => {
    const { live, sockets, states } = client({ heartbeat: { idleMs: 25_000, timeoutMs: 10_000 } });
    live.start();
    const socket = await sockets.next();
    open(socket);
    clock.advanceTo(3_000);
    socket.onmessage?.({ data: '{"message": "the last frame the server sent"}' });
    const lostAt = () =>
      states.findIndex((state) => state.startsWith("reconnecting: Connection lost"));
    let pingAt = -1;
    let noticedAt = -1;
    for (let ms = 3_000; ms <= 60_000 && noticedAt < 0; ms += 100) {
      clock.advanceTo(ms);
      if (pingAt < 0 && socket.sent.includes(PING_FRAME)) pingAt = ms;
      if (lostAt() >= 0) noticedAt = ms;
    }
    // The ping goes out once quiet for idleMs; the server is given up timeoutMs later.
    assertEquals({ pingAt, noticedAt }, { pingAt: 28_000, noticedAt: 38_000 });
    live.stop();
  });
});

Deno.test("heartbeat: a page that wakes late (frozen, asleep) waits timeoutMs for its ping's answer", async () => {
  await withManualClock(async (clock) => {
    const { live, sockets, states } = client({ heartbeat: { idleMs: 25_000, timeoutMs: 10_000 } });
    live.start();
    const socket = await sockets.next();
    open(socket);
    // The page's timers did not run for 40 s: the ping due at 25 s goes out only now.
    clock.now = 40_000;
    clock.advanceTo(40_000);
    assert(socket.sent.includes(PING_FRAME));
    // Its answer takes a real round trip (50 ms): the healthy socket stays open.
    clock.advanceTo(40_050);
    socket.onmessage?.({ data: PONG });
    clock.advanceTo(60_000);
    assertEquals([live.isOpen, socket.closedWith], [true, null]);
    assertEquals(states.filter((state) => state.startsWith("reconnecting")), []);
    live.stop();
  });
});

// The page's clock may be stepped (NTP, a laptop resumed): the heartbeat measures silence with
// the monotonic clock, so a step neither drops a healthy socket nor hides a dead one.
Deno.test("heartbeat: a wall clock stepped forward or back changes nothing", async () => {
  const realNow = Date.now;
  let step = 0;
  Date.now = () => realNow() + step;
  try {
    const { live, sockets } = client({ heartbeat: { idleMs: 30, timeoutMs: 60 } });
    live.start();
    const socket = await sockets.next();
    // Pongs come back after 20 ms: well within the 60 ms the client waits for them.
    socket.send = (data: string) => {
      socket.sent.push(data);
      if (data === PING_FRAME) setTimeout(() => socket.onmessage?.({ data: PONG }), 20);
    };
    open(socket);
    step = 60_000; // forward a minute
    await new Promise((resolve) => setTimeout(resolve, 150));
    step = -60_000; // and back two
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert(socket.sent.length >= 3, `only ${socket.sent.length} ping(s) in 300 ms`);
    assertEquals([live.isOpen, sockets.waiting, socket.closedWith], [true, 0, null]);
    // Now the server goes silent: the clock still stepped back, it is noticed all the same.
    socket.send = (data: string) => void socket.sent.push(data);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const noticed = await Promise.race([
      sockets.next().then((next) => (open(next), true)),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 2000)),
    ]);
    clearTimeout(timer);
    live.stop();
    assertEquals([noticed, socket.closedWith], [true, 4000], "the dead socket was not noticed");
  } finally {
    Date.now = realNow;
  }
});

Deno.test("a heartbeat without both of its times is refused at once, not a reconnect loop", () => {
  for (const heartbeat of [{ idleMs: 10_000 }, { idleMs: 0, timeoutMs: 5 }, { timeoutMs: 5 }]) {
    assertThrows(
      () => new LiveSocket("ws://chat.test/ws/", { heartbeat: heartbeat as never }),
      TypeError,
      "heartbeat.",
    );
  }
});

Deno.test("heartbeat times a timer cannot keep are refused at once, not a reconnect loop", () => {
  // A timer fires a wait of 2^31 ms or more at once: every attempt would be given up at once.
  const cases = [
    [{ idleMs: 3e9, timeoutMs: 10_000 }, "heartbeat.idleMs must be"],
    [{ idleMs: 10_000, timeoutMs: Infinity }, "heartbeat.timeoutMs must be"],
    [{ idleMs: 2 ** 31 - 1000, timeoutMs: 10_000 }, "together must be at most"],
  ] as const;
  for (const [heartbeat, message] of cases) {
    assertThrows(
      () => new LiveSocket("ws://chat.test/ws/", { heartbeat }),
      TypeError,
      message,
    );
  }
});
