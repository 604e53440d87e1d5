/**
 * A consumer under test without an app: the handshake of a {@linkcode ConsumerTarget} runs
 * through the consumer's own route, matched against its pattern, with the services given.
 * Each handshake, with or without an app, comes from a client address of its own (`clientInfo`).
 */
import type { Consumer } from "../server/consumer.ts";
import type { User } from "../auth/identify.ts";
import type { Services } from "../server/context.ts";
import { Router } from "../server/router.ts";
import { websocketHandler } from "../server/websocket_route.ts";
import type { LiveConnections } from "../server/live_connections.ts";
import { testUpgrade } from "./test_upgrade.ts";

/** A consumer outside the route table, with the services it runs on. */
export interface ConsumerTarget {
  /** The consumer under test. */
  consumer: Consumer;
  /** What its context reaches (see `createTestServices`). */
  services: Services;
  /** The route pattern that gives the path parameters, e.g. `/ws/chat/:room/`. */
  route?: string;
}

let nextPort = 40000;

/** The handler that runs `target`'s handshakes, with `user` signed in when given. */
export function consumerHandler(
  target: ConsumerTarget,
  live: LiveConnections,
  user: User | undefined,
): (request: Request) => Promise<Response> {
  const services: Services = user
    ? { ...target.services, identify: () => Promise.resolve({ user, sessionId: null }) }
    : target.services;
  const handler = websocketHandler(target.consumer, { upgrade: testUpgrade, live });
  return async (request) => {
    const url = new URL(request.url);
    const router = new Router([{ method: "GET", path: target.route ?? url.pathname, handler }]);
    const match = router.match("GET", url.pathname);
    if (match.kind !== "found") {
      throw new Error(`Path ${url.pathname} does not match route ${target.route}`);
    }
    const client = `127.0.0.1:${nextPort++}`;
    // Served straight, as through an app: the connection is the client's own.
    return await handler(request, { url, params: match.params, client, peer: client, services });
  };
}

/** A client address of its own, for a communicator's handshake through an app. */
export function clientInfo(): Deno.ServeHandlerInfo {
  const remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: nextPort++ };
  return { remoteAddr, completed: Promise.resolve() } as Deno.ServeHandlerInfo;
}
