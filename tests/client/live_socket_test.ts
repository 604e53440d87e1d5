import { assert, assertEquals, assertThrows } from "@std/assert";
import { LiveSocket, type LiveSocketOptions, PING_FRAME } from "../../client/live_socket.js";

import {
  PING_FRAME as SERVER_PING,
  PONG_FRAME as PONG,
} from "../../server/_connection_constants.ts";
import { Backoff } from "../../client/backoff.js";
import { drop, fakeSockets, open } from "./_fake_socket.ts";

function client(options: LiveSocketOptions = {}) {
  const sockets = fakeSockets();
  const states: string[] = [];
  const window = new EventTarget();
  const live = new LiveSocket("ws://chat.test/ws/", {
    WebSocket: sockets.WebSocket,
    window,
    backoff: new Backoff({ initialMs: 2, maxMs: 20, random: () => 1 }),
    onState: (state, text) => states.push(`${state}: ${text}`),
    ...options,
  });
  return { live, sockets, states, window };
}

Deno.test("a lost connection says so and reconnects by itself", async () => {
  const { live, sockets, states } = client();
  live.start();
  const first = await sockets.next();
  assertEquals(first.url, "ws://chat.test/ws/");
  open(first);
  assertEquals(live.isOpen, true);

  drop(first, 1006);
  assertEquals(live.isOpen, false);
  open(await sockets.next());
  assertEquals(states, [
    "connecting: Connecting…",
    "open: Connected",
    "reconnecting: Connection lost. Reconnecting in 1 s…",
    "reconnecting: Reconnecting…",
    "open: Connected",
  ]);
});

Deno.test("only frames that are JSON objects reach the client", async () => {
  const received: unknown[] = [];
  const { live, sockets } = client({ onFrame: (frame) => received.push(frame) });
  live.start();
  const socket = await sockets.next();
  open(socket);
  for (const data of ['{"message": "hello"}', "not json", "null", "42", '"text"']) {
    socket.onmessage?.({ data });
  }
  assertEquals(received, [{ message: "hello" }]);
});

Deno.test("frames go out on the open socket, and onOpen runs once it is open", async () => {
  const { live, sockets } = client({ onOpen: () => live.send("queued") });
  live.start();
  const socket = await sockets.next();
  assertEquals(live.isOpen, false);
  open(socket);
  live.send("typed");
  assertEquals(socket.sent, ["queued", "typed"]);
});

Deno.test("a close the client calls final stops the retries and shows its reason", async () => {
  const { live, sockets, states } = client({
    texts: { open: "Live" },
    onClose: (event) => event.code === 4001 ? { stop: "Logged out." } : {},
  });
  live.start();
  const socket = await sockets.next();
  open(socket);
  drop(socket, 4001);
  assertEquals(states, ["connecting: Connecting…", "open: Live", "closed: Logged out."]);
});

Deno.test("a close the client finds abusive skips the short delays", async () => {
  const backoff = new Backoff({ initialMs: 1, maxMs: 20, random: () => 1 });
  const { live, sockets } = client({
    backoff,
    onClose: (event) => event.code === 1008 ? { atLeastAttempts: 3 } : {},
  });
  live.start();
  const socket = await sockets.next();
  open(socket);
  drop(socket, 1008);
  assertEquals(backoff.attempts, 4);
  await sockets.next();
});

Deno.test("a page being left does not reconnect, and connects again when it is shown", async () => {
  const { live, sockets, states, window } = client();
  live.start();
  const socket = await sockets.next();
  open(socket);
  window.dispatchEvent(new Event("pagehide"));
  drop(socket, 1001);
  assertEquals(states.at(-1), "closed: Disconnected");

  window.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
  open(await sockets.next());
  assertEquals(states.at(-1), "open: Connected");
});

Deno.test("start() twice opens one socket: a second would be one stop() never closes", async () => {
  const { live, sockets } = client();
  live.start();
  live.start();
  const socket = await sockets.next();
  assertEquals(sockets.waiting, 0);
  open(socket);
  live.stop();
  assertEquals(socket.closedWith, 1000);
});

Deno.test("stop() removes the page's listeners, so nothing keeps a closed socket alive", () => {
  const listening = new Map<string, number>();
  class CountingWindow extends EventTarget {
    override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null) {
      listening.set(type, (listening.get(type) ?? 0) + 1);
      super.addEventListener(type, listener);
    }
    override removeEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject | null,
    ) {
      listening.set(type, (listening.get(type) ?? 0) - 1);
      super.removeEventListener(type, listener);
    }
  }
  const { live } = client({ window: new CountingWindow() });
  live.start();
  assertEquals([...listening.values()].reduce((a, b) => a + b, 0), 3);
  live.stop();
  assertEquals([...listening.values()].every((count) => count === 0), true, `${[...listening]}`);
});

Deno.test("stop() with a close a socket cannot send throws and changes nothing", async () => {
  const { live, sockets, states } = client();
  live.start();
  const socket = await sockets.next();
  open(socket);
  assertThrows(() => live.stop(1001), RangeError, "1000 or 3000-4999");
  assertThrows(() => live.stop(1000, "é".repeat(62)), RangeError, "123 bytes");
  assertEquals([live.isOpen, socket.closedWith, states.at(-1)], [true, null, "open: Connected"]);
  live.stop(4000, "bye");
  assertEquals([live.isOpen, socket.closedWith], [false, 4000]);
});

Deno.test("a close the client stops on is for good: coming back online opens nothing", async () => {
  const { live, sockets, states, window } = client({
    onClose: (event) => event.code === 4001 ? { stop: "Logged out" } : undefined,
  });
  live.start();
  const socket = await sockets.next();
  open(socket);
  drop(socket, 4001);
  assertEquals(states.at(-1), "closed: Logged out");
  window.dispatchEvent(new Event("online"));
  assertEquals(sockets.waiting, 0, "a socket was opened after the client stopped for good");
  assertEquals(states.at(-1), "closed: Logged out");
});

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

Deno.test("a handler that throws on one frame of a batched message leaves the others delivered", async () => {
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault(); // reported, as the module reports it, but not the test's failure
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const received: unknown[] = [];
    const { live, sockets } = client({
      decode: (data) => String(data).split("\n").map((line) => JSON.parse(line)),
      onFrame: (frame) => {
        if (frame.n === 2) throw new Error("the app's bug");
        received.push(frame.n);
      },
    });
    live.start();
    const socket = await sockets.next();
    open(socket);
    socket.onmessage?.({ data: '{"n":1}\n{"n":2}\n{"n":3}' });
    assertEquals(received, [1, 3]);
    assertEquals(reported.map((error) => (error as Error).message), ["the app's bug"]);
    live.stop();
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("start() with a URL no WebSocket takes throws and leaves no page listener", () => {
  const window = new EventTarget();
  let listening = 0;
  window.addEventListener = () => void listening++;
  window.removeEventListener = () => void listening--;
  class Refusing {
    static OPEN = 1;
    constructor(url: string) {
      throw new SyntaxError(`The URL's scheme must be ws or wss: ${url}`);
    }
  }
  const live = new LiveSocket("ftp://chat.test/", {
    WebSocket: Refusing as unknown as typeof WebSocket,
    window,
  });
  assertThrows(() => live.start(), SyntaxError, "scheme");
  assertEquals(listening, 0);
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

/** Runs `body` with the errors the module reports collected, instead of failing the test. */
async function withReported(body: (reported: unknown[]) => Promise<void>): Promise<void> {
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    await body(reported);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
}

Deno.test("an onClose that throws is reported, and the socket reconnects all the same", async () => {
  await withReported(async (reported) => {
    const { live, sockets, states } = client({
      onClose: () => {
        throw new Error("the app's close bug");
      },
    });
    live.start();
    const first = await sockets.next();
    open(first);
    drop(first, 1006);
    open(await sockets.next()); // reconnected
    assertEquals(states.at(-1), "open: Connected");
    assertEquals(reported.map((error) => (error as Error).message), ["the app's close bug"]);
    live.stop();
  });
});

Deno.test("an onState that throws on reconnecting is reported, and the attempt is made", async () => {
  await withReported(async (reported) => {
    const { live, sockets } = client({
      onState: (_state, text) => {
        if (text === "Reconnecting…") throw new Error("the app's label bug");
      },
    });
    live.start();
    const first = await sockets.next();
    open(first);
    drop(first, 1006);
    const second = await sockets.next(); // the retry's attempt happened
    open(second);
    assertEquals(live.isOpen, true);
    assertEquals(reported.length, 1);
    live.stop();
  });
});

Deno.test("a page left while a reconnect waits in its backoff cancels it; shown again, it connects", async () => {
  const { live, sockets, states, window } = client({
    backoff: new Backoff({ initialMs: 30, maxMs: 30, random: () => 1 }),
  });
  live.start();
  const first = await sockets.next();
  open(first);
  drop(first, 1006); // the retry waits 30 ms
  window.dispatchEvent(new Event("pagehide"));
  assertEquals(states.at(-1), "closed: Disconnected");
  await new Promise((resolve) => setTimeout(resolve, 60)); // past the cancelled retry's time
  assertEquals(sockets.waiting, 0, "a socket was opened for a page being left");
  window.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
  open(await sockets.next());
  assertEquals(states.at(-1), "open: Connected");
  live.stop();
});

Deno.test("onOpen does not run for a socket its open state's handler stopped", async () => {
  let opened = 0;
  const { live, sockets } = client({
    onState: (state) => state === "open" && live.stop(),
    onOpen: () => opened++,
  });
  live.start();
  open(await sockets.next());
  assertEquals([opened, live.isOpen], [0, false]);
});

Deno.test("an app's own reconnecting text is shown for the backoff's wait too", async () => {
  const { live, sockets, states } = client({ texts: { reconnecting: "Reconnexion…" } });
  live.start();
  const first = await sockets.next();
  open(first);
  drop(first, 1006);
  assertEquals(states.at(-1), "reconnecting: Reconnexion…");
  live.stop();
});

Deno.test("a connection that ended without a close code is told as 1006 in every runtime", async () => {
  const codes: number[] = [];
  const { live, sockets } = client({ onClose: (event) => void codes.push(event.code) });
  live.start();
  const first = await sockets.next();
  drop(first, 0); // what Deno's WebSocket says for a refused or cut connection
  assertEquals(codes, [1006]);
  live.stop();
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

// In Deno an error reported with `reportError` that nobody takes ends the program: a terminal
// client whose handler has a bug would exit instead of going on.
Deno.test("a handler that throws with no listener to take it is shown on the console, and the socket goes on", async () => {
  const shown: unknown[][] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void shown.push(args);
  try {
    const received: unknown[] = [];
    const { live, sockets } = client({
      onFrame: (frame) => {
        if (frame.n === 1) throw new Error("the app's bug");
        received.push(frame.n);
      },
    });
    live.start();
    const socket = await sockets.next();
    open(socket);
    socket.onmessage?.({ data: '{"n":1}' });
    socket.onmessage?.({ data: '{"n":2}' });
    assertEquals(received, [2]);
    assertEquals(shown.length, 1);
    assertEquals((shown[0][1] as Error).message, "the app's bug");
    live.stop();
  } finally {
    console.error = consoleError;
  }
});

// The address question of a socket whose attempts keep failing before they open: each call
// answers with the next of `answers` (a Response, or an Error to throw as a failed fetch).
function probing(answers: (Response | Error)[]) {
  const asked: { url: string; init: RequestInit | undefined }[] = [];
  const probe = ((url: string, init?: RequestInit) => {
    asked.push({ url, init });
    const answer = answers.shift() ?? new Error("no more answers");
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }) as typeof fetch;
  return { probe, asked };
}

async function withConsoleError<T>(run: (shown: unknown[][]) => Promise<T>): Promise<T> {
  const shown: unknown[][] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void shown.push(args);
  try {
    return await run(shown);
  } finally {
    console.error = consoleError;
  }
}

// Until `live` has said "closed", or `sockets` has a new attempt waiting.
async function closedOrRetried(states: string[], sockets: { waiting: number }) {
  while (!states.at(-1)?.startsWith("closed") && sockets.waiting === 0) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

Deno.test("a wrong address stops after two failed attempts, and the state says there is no such route", async () => {
  await withConsoleError(async (shown) => {
    const { probe, asked } = probing([new Response("Not Found", { status: 404 })]);
    const { live, sockets, states, window } = client({ probe });
    live.start();
    drop(await sockets.next(), 1006);
    assertEquals(asked.length, 0, "one failure asks nothing: a server may be restarting");
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals(asked.map((question) => question.url), ["http://chat.test/ws/"]);
    assertEquals(asked[0].init?.redirect, "manual");
    assertEquals(states.at(-1), "closed: No WebSocket route at /ws/ (404 Not Found)");
    // For good: neither the backoff's timer nor the page coming back online opens another.
    await new Promise((resolve) => setTimeout(resolve, 30));
    window.dispatchEvent(new Event("online"));
    assertEquals(sockets.waiting, 0);
    assertEquals(shown.length, 1);
    assert(String(shown[0][0]).includes("No WebSocket route at /ws/"), String(shown[0][0]));
  });
});

Deno.test("an address that redirects (a trailing slash missing) stops, and the state says so", async () => {
  await withConsoleError(async () => {
    const sockets = fakeSockets();
    const states: string[] = [];
    const { probe, asked } = probing([
      // Deno's fetch sees where it goes, query and all: the state names its path alone.
      new Response(null, { status: 301, headers: { location: "/ws/chat/lobby/?token=SECRET" } }),
    ]);
    const live = new LiveSocket("wss://chat.test/ws/chat/lobby?since=4", {
      WebSocket: sockets.WebSocket,
      window: new EventTarget(),
      backoff: new Backoff({ initialMs: 2, maxMs: 20, random: () => 1 }),
      onState: (state, text) => states.push(`${state}: ${text}`),
      probe,
    });
    live.start();
    drop(await sockets.next(), 1006);
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals(asked[0].url, "https://chat.test/ws/chat/lobby?since=4");
    assertEquals(
      states.at(-1),
      "closed: /ws/chat/lobby redirects to /ws/chat/lobby/, which a WebSocket does not follow " +
        "(a trailing slash missing?)",
    );
  });
});

Deno.test("an address that is a route, or a server that does not answer, keeps the attempts going", async () => {
  const upgradeRequired = new Response("Not a WebSocket upgrade", { status: 426 });
  for (const answer of [upgradeRequired, new TypeError("Failed to fetch")]) {
    const { probe, asked } = probing([answer]);
    const { live, sockets, states } = client({ probe });
    live.start();
    drop(await sockets.next(), 1006);
    drop(await sockets.next(), 1006);
    const third = await sockets.next();
    assertEquals(asked.length, 1);
    open(third);
    assertEquals(states.at(-1), "open: Connected");
    live.stop();
  }
});

Deno.test("an address answered once is not asked again at every failed attempt, one nobody answered is", async () => {
  const upgradeRequired = () => new Response("Not a WebSocket upgrade", { status: 426 });
  // A signed-out tab on a login-required route: every handshake refused, every GET a 426.
  const answered = probing([upgradeRequired(), upgradeRequired(), upgradeRequired()]);
  const signedOut = client({ probe: answered.probe });
  signedOut.live.start();
  for (let attempt = 0; attempt < 5; attempt++) drop(await signedOut.sockets.next(), 1006);
  const opened = await signedOut.sockets.next();
  open(opened);
  assertEquals(answered.asked.length, 1, "answered once: asked once");
  // An attempt opened: the next streak of failures asks again.
  drop(opened, 1006);
  for (let attempt = 0; attempt < 2; attempt++) drop(await signedOut.sockets.next(), 1006);
  await signedOut.sockets.next();
  assertEquals(answered.asked.length, 2);
  signedOut.live.stop();
  // The server down: nothing answered, so it is asked again while the attempts fail.
  const down = probing([new TypeError("Failed to fetch"), new TypeError("Failed to fetch")]);
  const away = client({ probe: down.probe });
  away.live.start();
  for (let attempt = 0; attempt < 3; attempt++) drop(await away.sockets.next(), 1006);
  await away.sockets.next();
  assertEquals(down.asked.length, 2);
  away.live.stop();
});

Deno.test("an attempt that opens while the address is asked about keeps the socket, whatever the answer", async () => {
  let answer = (_: Response) => {};
  const probe = (() => new Promise<Response>((resolve) => answer = resolve)) as typeof fetch;
  const { live, sockets, states } = client({ probe });
  live.start();
  drop(await sockets.next(), 1006);
  drop(await sockets.next(), 1006);
  open(await sockets.next());
  answer(new Response("Not Found", { status: 404 }));
  await new Promise((resolve) => setTimeout(resolve, 5));
  assertEquals(states.at(-1), "open: Connected");
  assertEquals(live.isOpen, true);
  live.stop();
});

Deno.test("stop() while the address is asked about aborts the question", async () => {
  let signal: AbortSignal | undefined;
  const probe = ((_: string, init?: RequestInit) => {
    signal = init?.signal ?? undefined;
    return new Promise<Response>((_, reject) => {
      signal?.addEventListener("abort", () => reject(signal?.reason));
    });
  }) as typeof fetch;
  const { live, sockets } = client({ probe });
  live.start();
  drop(await sockets.next(), 1006);
  drop(await sockets.next(), 1006);
  assert(signal !== undefined && !signal.aborted);
  live.stop();
  assertEquals(signal?.aborted, true);
});
