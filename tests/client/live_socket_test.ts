import { assertEquals } from "@std/assert";
import { LiveSocket, type LiveSocketOptions } from "../../client/live_socket.js";
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
