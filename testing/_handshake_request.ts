/**
 * The request a communicator's handshake sends: what a browser's `new WebSocket(url)` sends, on
 * a signal that tells the server its client left, with the fake socket offered to the app's
 * upgrade seam.
 */
import { offerSocket } from "./test_upgrade.ts";
import { markInProcess } from "../server/_in_process_handshakes.ts";
import type { FakeSocket } from "./fake_socket.ts";

/** A WebSocket handshake for `url` with the test's `extra` headers, offering `socket`. */
export function handshakeRequest(
  url: URL,
  extra: Headers,
  options: { socket: FakeSocket; signal: AbortSignal },
): Request {
  const headers = new Headers(extra);
  headers.set("upgrade", "websocket");
  headers.set("connection", "Upgrade");
  headers.set("sec-websocket-version", "13");
  headers.set("sec-websocket-key", btoa(crypto.randomUUID().slice(0, 16)));
  // Every real client sends one; a consumer may read it (it is kept after `connect`).
  if (!headers.has("host")) headers.set("host", url.host);
  const request = new Request(url, { headers, signal: options.signal });
  offerSocket(request, options.socket);
  markInProcess(request);
  return request;
}
