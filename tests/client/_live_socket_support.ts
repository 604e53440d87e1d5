/** What the live socket's test files share: a client over fake sockets. */
import { LiveSocket, type LiveSocketOptions } from "../../client/live_socket.js";
import { Backoff } from "../../client/backoff.js";
import { fakeSockets } from "./_fake_socket.ts";

/**
 * A LiveSocket at `url` (default `ws://chat.test/ws/`) over fake sockets with a fast backoff,
 * the states it told, and its page.
 */
export function client(
  options: LiveSocketOptions = {},
  url: string | (() => string) = "ws://chat.test/ws/",
) {
  const sockets = fakeSockets();
  const states: string[] = [];
  const window = new EventTarget();
  const live = new LiveSocket(url, {
    WebSocket: sockets.WebSocket,
    window,
    backoff: new Backoff({ initialMs: 2, maxMs: 20, random: () => 1 }),
    onState: (state, text) => states.push(`${state}: ${text}`),
    ...options,
  });
  return { live, sockets, states, window };
}
