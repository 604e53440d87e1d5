/** What the stream client's test files share: a client over fake sockets, and frames to feed it. */
import {
  connectStream,
  type Recovery,
  type StreamMessage,
  type StreamOptions,
} from "../../client/channels_client.js";
import { Backoff } from "../../client/backoff.js";
import { type FakeSocket, fakeSockets } from "./_fake_socket.ts";

/** Delivers each of `frames` to `socket`'s client, as JSON. */
export function feed(socket: FakeSocket, ...frames: Record<string, unknown>[]): void {
  for (const frame of frames) socket.onmessage?.({ data: JSON.stringify(frame) });
}

/** A stream client of `url` over fake sockets, and what it told. */
export function start(
  url = "ws://chat.test/ws/chat/lobby/?presence=1",
  options: StreamOptions = {},
) {
  const sockets = fakeSockets();
  const messages: string[] = [];
  const recoveries: Recovery[] = [];
  const frames: Record<string, unknown>[] = [];
  const states: string[] = [];
  const stream = connectStream(url, {
    WebSocket: sockets.WebSocket,
    window: new EventTarget(),
    backoff: new Backoff({ initialMs: 2, maxMs: 20, random: () => 1 }),
    onMessage: (message: StreamMessage) => messages.push(String(message.message)),
    onRecovered: (recovery) => recoveries.push(recovery),
    onFrame: (frame) => frames.push(frame),
    onStateChange: (state, text) => states.push(`${state}: ${text}`),
    ...options,
  });
  return { stream, sockets, messages, recoveries, frames, states };
}
