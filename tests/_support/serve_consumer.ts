/**
 * A consumer served on a real port through `websocketHandler`, with the real
 * `Deno.upgradeWebSocket`: for tests of what only a real socket does.
 */
import type { Consumer } from "../../server/consumer.ts";
import type { Services } from "../../server/context.ts";
import type { WebSocketRouteOptions } from "../../server/routes.ts";
import { websocketHandler } from "../../server/websocket_route.ts";
import { LiveConnections } from "../../server/live_connections.ts";
import type { ConnectionCaps } from "../../server/connection_caps.ts";
import { createTestApp } from "./test_app.ts";
import { formatAddr, log, type LogLevel } from "../../telemetry/log.ts";

/** `consumer` served on a real port through `websocketHandler`; `await using` stops it. */
export async function serveConsumer(
  consumer: Consumer,
  path: string,
  options: {
    logLevel?: LogLevel;
    caps?: ConnectionCaps;
    /** Sees each request before the handler does. */
    onRequest?: (request: Request) => void;
  } = {},
): Promise<AsyncDisposable & { url: string }> {
  // The app is only a source of services; the sockets are real ones.
  const app = await createTestApp();
  if (options.logLevel) log.setLevel(options.logLevel); // after the app, which sets "silent"
  const services = app.services;
  const live = new LiveConnections();
  const handler = websocketHandler(consumer, { live, caps: options.caps });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request, info) => {
    const url = new URL(request.url);
    options.onRequest?.(request);
    return handler(request, { url, params: {}, client: formatAddr(info.remoteAddr), services });
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}${path}`,
    async [Symbol.asyncDispose]() {
      log.setLevel("silent");
      await live.closeAll(1001, "Test over");
      await server.shutdown();
      await app[Symbol.asyncDispose]();
    },
  };
}

/**
 * `consumer` at `/ws/private/` on its own port, with `services` (a running test server's, so
 * its sessions and tokens count); `await using` stops it.
 */
export function serveRouteWith(
  services: Services,
  consumer: Consumer,
  options: WebSocketRouteOptions = {},
): AsyncDisposable & { live: LiveConnections; origin: string; wsUrl: string } {
  const live = new LiveConnections();
  const handler = websocketHandler(consumer, { ...options, live });
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request, info) =>
      handler(request, {
        url: new URL(request.url),
        params: {},
        client: formatAddr(info.remoteAddr),
        services,
      }),
  );
  const origin = `http://127.0.0.1:${http.addr.port}`;
  return {
    live,
    origin,
    wsUrl: `${origin.replace("http", "ws")}/ws/private/`,
    async [Symbol.asyncDispose]() {
      await live.closeAll(1001, "Test over");
      await http.shutdown();
    },
  };
}

/**
 * A consumer whose `connect` waits until `release()`: `entered` resolves once a handshake is in
 * it, for a test to run something (a log-out, a renewal) at exactly that moment. `disconnected`
 * holds the codes its `disconnect` ran with.
 */
export function heldInConnect(): {
  consumer: Consumer;
  entered: Promise<void>;
  release: () => void;
  disconnected: number[];
} {
  const entered = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const disconnected: number[] = [];
  const consumer: Consumer = () => ({
    async connect() {
      entered.resolve();
      await gate.promise;
    },
    disconnect: (code) => void disconnected.push(code),
  });
  return { consumer, entered: entered.promise, release: () => gate.resolve(), disconnected };
}
