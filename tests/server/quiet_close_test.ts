/**
 * A socket refused for flooding is closed once its client stops sending, so the close frame is
 * not lost to the reset a late frame brings. Quiet is what the client did, not what a busy
 * server failed to read.
 */
import { assertEquals } from "@std/assert";
import { closeOnNextTurn, QUIET_BEFORE_CLOSE_MS } from "../../server/_socket_close.ts";
import type { SocketLike } from "../../server/_socket.ts";
import type { Scope } from "../../server/consumer.ts";

Deno.test("a server too busy to read its client's frames does not take that for the client's quiet", async () => {
  const events: string[] = [];
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const socket = {
    readyState: WebSocket.OPEN,
    onmessage: null as (() => void) | null,
    close() {
      this.readyState = WebSocket.CLOSED;
      events.push("closed");
      resolve();
    },
  };
  closeOnNextTurn(socket as unknown as SocketLike, {
    code: 1008,
    reason: "Too many messages",
    scope: { path: "/ws/flood/", client: ["127.0.0.1", 1] } as unknown as Scope,
    sent: () => {},
  }, true);
  // The event loop is blocked longer than the quiet (a busy server): the client's next frame is
  // read only once it is free again, right after the close's first check.
  const blockedUntil = performance.now() + QUIET_BEFORE_CLOSE_MS * 3;
  while (performance.now() < blockedUntil) { /* busy */ }
  setTimeout(() => {
    events.push(socket.readyState === WebSocket.OPEN ? "frame read while open" : "frame lost");
    socket.onmessage?.();
  }, 0);
  await closed;
  assertEquals(events, ["frame read while open", "closed"]);
});
