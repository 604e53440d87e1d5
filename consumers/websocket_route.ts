/**
 * The handshake: the one module that upgrades a request to a WebSocket. Origin and login are
 * checked and the consumer's `connect` hook runs before the upgrade, so every refusal is a
 * plain HTTP answer (403, or 426 for a request that is not an upgrade).
 */
import type { Consumer, Scope } from "./consumer.ts";
import type { Handler, Identity, RequestContext } from "../server/context.ts";
import { WebSocketConnection } from "./_connection.ts";
import type { SocketLike } from "./_socket.ts";
import { readCookies } from "../auth/cookies.ts";
import { sessionGroup } from "../auth/sessions.ts";
import { log } from "../server/log.ts";
import { isOriginAllowed } from "./origin.ts";

/** How a WebSocket route is guarded. */
export interface WebSocketRouteOptions {
  /** Refuse anonymous users with 403 before any socket opens. */
  loginRequired?: boolean;
}

/** Upgrades a request; `Deno.upgradeWebSocket` in production, a fake in tests. */
export type UpgradeWebSocket = (request: Request) => { socket: SocketLike; response: Response };

/** The live sockets of one app, so shutdown and logout can reach them. */
export class LiveConnections {
  #all = new Map<SocketLike, WebSocketConnection>();

  /** How many sockets are open. */
  get size(): number {
    return this.#all.size;
  }

  /** Tracks the connection on `socket` until it finishes. */
  track(connection: WebSocketConnection, socket: SocketLike): void {
    this.#all.set(socket, connection);
    connection.onFinished(() => this.#all.delete(socket));
  }

  /** Resolves once the connection on `socket` has run its `disconnect` (tests wait on it). */
  finished(socket: SocketLike): Promise<void> {
    return this.#all.get(socket)?.finished ?? Promise.resolve();
  }

  /** Closes every socket with `code` and waits for their `disconnect` hooks. */
  async closeAll(code: number, reason: string): Promise<void> {
    const finishing = [...this.#all.values()].map((connection) => {
      connection.close(code, reason);
      return connection.finished;
    });
    await Promise.all(finishing);
  }
}

/** Builds the HTTP handler that turns requests into connections of `consumer`. */
export function websocketHandler(
  consumer: Consumer,
  options: WebSocketRouteOptions & { upgrade?: UpgradeWebSocket; live: LiveConnections },
): Handler {
  const upgrade: UpgradeWebSocket = options.upgrade ??
    ((request) => Deno.upgradeWebSocket(request));
  return async (request: Request, context: RequestContext): Promise<Response> => {
    const path = context.url.pathname;
    log.websocket("HANDSHAKING", path, context.client);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      log.websocket("REJECT", path, context.client);
      return new Response(
        "This address is a WebSocket endpoint: connect with a WebSocket client.\n",
        {
          status: 426,
          headers: {
            upgrade: "websocket",
            connection: "Upgrade",
            "content-type": "text/plain; charset=utf-8",
          },
        },
      );
    }
    const identity = await context.services.identify(request);
    const refusal = checkAccess(request, context, identity, options);
    if (refusal !== null) {
      log.websocket("REJECT", path, context.client);
      return forbidden(refusal);
    }
    const scope = buildScope(request, context, identity);
    const { config, layer } = context.services;
    const connection = new WebSocketConnection(consumer, { scope, layer, limits: config });
    if (!await connection.runConnect()) {
      log.websocket("REJECT", path, context.client);
      return forbidden("The server refused this connection");
    }
    if (options.loginRequired && identity.sessionId !== null) {
      // Logging out sends `connection.close` to this group (routes/accounts.ts).
      await connection.groupAdd(await sessionGroup(identity.sessionId));
    }
    const { socket, response } = upgrade(request);
    connection.attach(socket);
    options.live.track(connection, socket);
    log.websocket("CONNECT", path, context.client);
    return response;
  };
}

function checkAccess(
  request: Request,
  context: RequestContext,
  identity: Identity,
  options: WebSocketRouteOptions,
): string | null {
  const { config } = context.services;
  if (
    !isOriginAllowed(request, { allowedHosts: config.allowedHosts, trustProxy: config.trustProxy })
  ) {
    return "Cross-site WebSocket refused: the Origin is not an allowed host";
  }
  if (options.loginRequired && !identity.user.isAuthenticated) {
    return "Log in to open this connection";
  }
  return null;
}

function buildScope(request: Request, context: RequestContext, identity: Identity): Scope {
  return new HandshakeScope(request, context, identity);
}

/**
 * A socket's scope. Query and cookies are parsed when first read: most consumers never read
 * them, and holding the parsed URL for every idle socket would cost memory per socket.
 */
class HandshakeScope implements Scope {
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly headers: Headers;
  readonly client: string;
  readonly user: Identity["user"];
  readonly sessionId: string | null;
  #search: string;
  #query: URLSearchParams | null = null;
  #cookies: Readonly<Record<string, string>> | null = null;

  constructor(request: Request, context: RequestContext, identity: Identity) {
    this.path = context.url.pathname;
    this.params = context.params;
    this.headers = request.headers;
    this.client = context.client;
    this.user = identity.user;
    this.sessionId = identity.sessionId;
    this.#search = context.url.search;
  }

  get query(): URLSearchParams {
    return this.#query ??= new URLSearchParams(this.#search);
  }

  get cookies(): Readonly<Record<string, string>> {
    return this.#cookies ??= readCookies(this.headers);
  }
}

function forbidden(reason: string): Response {
  return new Response(`${reason}\n`, {
    status: 403,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
