/** The live socket's lifecycle: reconnects, start and stop, the page, handlers that throw. */
import { assertEquals, assertThrows } from "@std/assert";
import { LiveSocket } from "../../client/live_socket.js";
import { Backoff } from "../../client/backoff.js";
import { drop, open } from "./_fake_socket.ts";
import { client } from "./_live_socket_support.ts";

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
