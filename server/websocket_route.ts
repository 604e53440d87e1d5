/**
 * The handshake: the one module that upgrades a request to a WebSocket. The handshake's form
 * (RFC 6455), Origin and login are checked and the consumer's `connect` hook runs before the
 * upgrade, so every refusal is a plain HTTP answer, and its log line says why:
 * - 400 or 426: a malformed handshake;
 * - 403: the Origin, the login, or the consumer said no;
 * - 429: a connection cap is reached;
 * - 500: the consumer's `connect` failed (a bug, logged);
 * - 503: a backend (the layer, the session store) is unavailable, to be tried again;
 * - 499 (logged only): the client left before the answer.
 * A plain `GET` of the route (no upgrade) gets 426, or 403 with why a handshake of the same
 * client would be refused for good (`_refusal_question.ts`).
 */
import { shownClient } from "./_shown_client.ts";
import type { Consumer } from "./consumer.ts";
import type { Handler, RequestContext, Services } from "./context.ts";
import type { Identity } from "../auth/identify.ts";
import { type Recheck, WebSocketConnection } from "./_connection.ts";
import { BATCH_PROTOCOL, batchRequested } from "./_frame_batch.ts";
import type { SocketLike } from "./_socket.ts";
import { log } from "../telemetry/log.ts";
import { CloseCode } from "./close_codes.ts";
import { asksForWebSocket, checkHandshake } from "./handshake.ts";
import { answeredSubprotocol } from "./_subprotocol_choice.ts";
import { logReason } from "./log_reason.ts";
import type { CapLease, ConnectionCaps } from "./connection_caps.ts";
import { releaseWithSocket } from "./_cap_release.ts";
import { clientHost } from "../auth/throttle.ts";
import type { WebSocketRouteOptions } from "./routes.ts";
import { consumerRefusals, handFailuresOver } from "./_consumer_failures.ts";
import { type RefusalReason, RouteMeter } from "./server_metrics.ts";
import { HandshakeScope, KEPT_HANDSHAKE_HEADERS } from "./_handshake_scope.ts";
import { joinSessionGroup, sessionRecheck } from "./_session_socket.ts";
import { joinBrowserGroup } from "./_browser_socket.ts";
import { closeAtExpiry } from "./_identity_expiry.ts";
import { tokenSockets } from "./_token_sockets.ts";
import { externalSessionRecheck, joinExternalSession } from "./_external_session_socket.ts";
import type { LiveConnections } from "./live_connections.ts";
import { refusedByDenoUpgrade } from "./_in_process_handshakes.ts";
import { RecentRefusals } from "./_recent_refusals.ts";
import {
  askerOf,
  identityRefusal,
  knownRefusal,
  originDenied,
  refusalStands,
  REFUSED_HEADER,
} from "./_refusal_question.ts";

export { KEPT_HANDSHAKE_HEADERS };

/**
 * Upgrades a request; `Deno.upgradeWebSocket` in production, a fake in tests. `protocol`, when
 * given, is the subprotocol the 101 answers with (one the client offered).
 */
export type UpgradeWebSocket = (
  request: Request,
  options?: { protocol?: string },
) => { socket: SocketLike; response: Response };

/** What a route's handshakes share: made once per route, not a closure per socket. */
interface Route {
  consumer: Consumer;
  options: WebSocketRouteOptions;
  upgrade: UpgradeWebSocket;
  live: LiveConnections;
  caps: ConnectionCaps | undefined;
  meter: RouteMeter;
  // A closure made per handshake would keep its whole scope (the request's context and parsed
  // URL) alive for as long as the socket: these two are the route's.
  onDroppedBeforeOpen: (frames: number) => void;
  onFinished: (socket: SocketLike | null, neverOpened: boolean) => void;
  /** What the consumer refused lately, told to a plain `GET` of the same address. */
  recent: RecentRefusals;
}

/** A handshake refused: its status, the reason counted, the reason given, extra headers. */
type Refusal = [status: number, why: RefusalReason, reason: string, headers?: HeadersInit];

/** A handshake the checks before the consumer let through. */
interface Admitted {
  identity: Identity;
  /** The signed-in user's name, else `null`. */
  user: string | null;
  /** The place under the connection caps, when there are caps. */
  lease: CapLease | undefined;
}

/** A handshake whose consumer accepted it, about to be upgraded. */
interface Accepted {
  request: Request;
  scope: HandshakeScope;
  connection: WebSocketConnection;
  identity: Identity;
  /** Its socket once upgraded: the cap's place is given back with it. */
  upgraded: { socket: SocketLike | null };
}

/** Builds the HTTP handler that turns requests into connections of `consumer`. */
export function websocketHandler(
  consumer: Consumer,
  options: WebSocketRouteOptions & {
    upgrade?: UpgradeWebSocket;
    live: LiveConnections;
    /** Caps on open sockets per address and per user, shared by the app's routes. */
    caps?: ConnectionCaps;
    /** The route's counts (see `server_metrics.ts`); default: counted nowhere. */
    meter?: RouteMeter;
  },
): Handler {
  const { live } = options;
  const meter = options.meter ?? new RouteMeter("");
  const route: Route = {
    consumer,
    options,
    upgrade: options.upgrade ?? denoUpgrade,
    live,
    caps: options.caps,
    meter,
    onDroppedBeforeOpen: (frames) => {
      meter.beforeOpen += frames;
      live.countDroppedBeforeOpen(frames);
    },
    onFinished: (socket, neverOpened) => {
      if (socket !== null) live.forget(socket);
      if (neverOpened) live.heldByDeno++;
    },
    recent: new RecentRefusals(),
  };
  return async (request: Request, context: RequestContext): Promise<Response> => {
    // Deno aborts a request's signal when its client goes only if something listens to it by
    // then: without this, the check before the upgrade never saw a client that left.
    request.signal.addEventListener("abort", noticeAbort);
    if (!asksForWebSocket(request)) {
      // No handshake at all (a browser or a probe opening the address): an HTTP request, with
      // the app's access line and its status, rather than a socket's lines.
      const notUpgrade = checkHandshake(request)!;
      const questioned = { recent: route.recent, loginRequired: route.options.loginRequired };
      const known = request.method === "GET"
        ? await knownRefusal(questioned, request, context)
        : null;
      // A refusal told is a question about a handshake, not one: counted as none.
      if (known === null) meter.refused.bad_handshake++;
      const [status, reason, headers] = known === null
        ? [notUpgrade.status, notUpgrade.reason, notUpgrade.headers]
        : [403, known.reason, { [REFUSED_HEADER]: known.why }];
      return logReason(refusal(status, reason, headers), reason);
    }
    log.websocket("HANDSHAKING", context.url.pathname, shownClient(context.client, context.peer));
    const answer = await handshake(route, request, context);
    if (answer instanceof Response) return answer;
    const [status, why, reason, headers = {}] = answer;
    meter.refused[why]++;
    const shown = shownClient(context.client, context.peer);
    log.websocket("REJECT", context.url.pathname, shown, reason);
    return refusal(status, reason, headers);
  };
}

// The handshake's steps, in order; each refusal ends it.
async function handshake(
  route: Route,
  request: Request,
  context: RequestContext,
): Promise<Response | Refusal> {
  const admitted = await admit(route, request, context);
  if (Array.isArray(admitted)) return admitted;
  const scope = new HandshakeScope(request, context, admitted.identity);
  // Opt-in only: a client that asked for neither gets one message per frame.
  const batch = batchRequested(request, context.url);
  const connection = openConnection(route, context, scope, admitted.identity, batch !== "none");
  if (Array.isArray(connection)) {
    // Nothing was taken but the cap's place, which must not stay taken by a socket that
    // never was.
    admitted.lease?.release();
    return connection;
  }
  // Given back when the connection finishes (a refused `connect` does too), or later.
  const upgraded: { socket: SocketLike | null } = { socket: null };
  const { lease } = admitted;
  if (lease !== undefined) {
    connection.onFinished(() => releaseWithSocket(lease, upgraded.socket, connection.neverOpened));
  }
  const refused = await connectAndBind(connection, request, context, admitted);
  if (refused !== null) {
    const code = consumerRefusals.get(request)?.code;
    if (refused[1] === "consumer" && refusalStands(code)) {
      route.recent.note(await askerOf(request, context, admitted.identity), refused[2]);
    }
    return refused;
  }
  const accepted = { request, scope, connection, identity: admitted.identity, upgraded };
  const asker = route.recent.size > 0 ? await askerOf(request, context, admitted.identity) : null;
  const answer = await upgradeAccepted(route, accepted, batch === "protocol");
  // Let in now: an earlier refusal of the same client is no longer what it would be told.
  if (asker !== null && answer instanceof Response) route.recent.forget(asker);
  return answer;
}

// What is checked before the consumer runs: the client still there, the handshake's form, the
// Origin, who the user is and the login, the connection caps.
async function admit(
  route: Route,
  request: Request,
  context: RequestContext,
): Promise<Admitted | Refusal> {
  // A connection reset before Deno read its address: gone already (a client, or behind a
  // trusted proxy, the proxy's connection). Upgraded, its socket would never open nor close
  // (a descriptor kept for good), and every such client would share one place under the caps.
  if ((context.peer ?? context.client) === GONE_CLIENT) return [499, "client_left", CLIENT_LEFT];
  // A malformed handshake must never reach `Deno.upgradeWebSocket`, which throws (a 500).
  const bad = checkHandshake(request);
  if (bad !== null) return [bad.status, "bad_handshake", bad.reason, bad.headers];
  // Before anyone is asked who the user is (a store read, a question to Django): a cross-site
  // page's handshakes cost nothing, and are refused as such even while Django is away.
  const crossSite = originDenied(request, context);
  if (crossSite !== null) return [403, "origin", crossSite];
  // An access token (`Authorization: Bearer` or `?token=`) names the user when no session
  // does. One that fails is refused here, with its reason, rather than read as anonymous.
  // Django's questions are shared out by the address the cap below counts: the cap is taken
  // after them, so it cannot bound them.
  const address = clientHost(context.client);
  const identity = await context.services.identify(request, { tokens: true, client: address });
  // A session or token the store could not read: not anonymous, not refused as unknown. Unless
  // the read was dropped because its client left (a question to Django): no outage, then.
  if (identity.unavailable !== undefined) {
    if (request.signal.aborted) return [499, "client_left", CLIENT_LEFT];
    return [503, "unavailable", identity.unavailable];
  }
  // A token refused, a Django name passing for an account here, a login required.
  const refused = identityRefusal(identity, route.options.loginRequired);
  if (refused !== null) return [403, refused.why, refused.reason];
  const user = identity.user.isAuthenticated ? identity.user.username : null;
  const lease = route.caps?.acquire(address, user);
  if (lease !== undefined && "refused" in lease) {
    return [429, lease.cap === "user" ? "cap_user" : "cap_address", lease.refused];
  }
  return { identity, user, lease };
}

// The consumer's connection; refused when the layer cannot give it a channel (its broker is
// away).
function openConnection(
  route: Route,
  context: RequestContext,
  scope: HandshakeScope,
  identity: Identity,
  batch: boolean,
): WebSocketConnection | Refusal {
  const { config, layer } = context.services;
  try {
    return new WebSocketConnection(route.consumer, {
      scope,
      layer,
      limits: config,
      onDroppedBeforeOpen: route.onDroppedBeforeOpen,
      onFinished: route.onFinished,
      batch,
      meter: route.meter,
      onRecheck: recheckOf(identity, context.services),
    });
  } catch (error) {
    log.warn(`Could not open a channel on the layer for ${scope.path}`, error);
    return [503, "unavailable", "Server busy: the layer is unavailable; retry later"];
  }
}

// Runs the consumer's `connect`, then binds an accepted socket to its session or token: a
// log-out or a revoke closes it through their groups.
async function connectAndBind(
  connection: WebSocketConnection,
  request: Request,
  context: RequestContext,
  { identity, user }: Admitted,
): Promise<Refusal | null> {
  const refused = await connection.runConnect();
  if (refused !== null) {
    const why = refused.status === 500
      ? "consumer_error"
      : refused.status === 503
      ? "unavailable"
      : "consumer";
    consumerRefusals.set(request, refused);
    return [refused.status, why, refused.reason];
  }
  if (identity.sessionId !== null) {
    const outOfSession = await joinSessionGroup(connection, context.services, identity.sessionId);
    if (outOfSession !== null) return outOfSession;
  }
  if (identity.external !== undefined) {
    const outOfSession = await joinExternalSession(connection, identity.external);
    if (outOfSession !== null) return outOfSession;
  }
  if (identity.tokenId !== undefined && user !== null) {
    const token = { username: user, tokenId: identity.tokenId };
    return await tokenSockets(context.services).join(connection, token);
  }
  // Anonymous: a log-in in its browser tells it to reconnect signed in.
  if (identity.sessionId === null && identity.external === undefined && user === null) {
    return await joinBrowserGroup(connection, request);
  }
  return null;
}

// The 101, unless the client left meanwhile; the socket is then the connection's.
async function upgradeAccepted(
  route: Route,
  accepted: Accepted,
  batchByProtocol: boolean,
): Promise<Response | Refusal> {
  const { request, scope, connection, identity } = accepted;
  // A client that left while `connect` ran: Deno would keep the descriptor of a socket
  // upgraded for it for good (it never opens nor closes), so it is not upgraded. Only with
  // --unstable-no-legacy-abort (the tasks pass it), and a listener (above), does the signal
  // say so.
  const aborted = request.signal.aborted;
  request.signal.removeEventListener("abort", noticeAbort); // or it is kept with the socket
  if (aborted) {
    await connection.abort(CloseCode.ABNORMAL_CLOSURE);
    // What its `disconnect(1006)` raised (logged) is kept by the request, as a refusal is: no
    // socket will ever hold it, and a communicator's `disconnect()` tells it.
    handFailuresOver(connection, request);
    return [499, "client_left", CLIENT_LEFT];
  }
  const protocol = answeredSubprotocol(request, connection, {
    batchOffered: batchByProtocol,
  });
  if (batchByProtocol && protocol !== BATCH_PROTOCOL) connection.stopBatching();
  // Before the upgrade: from then on, the request's own headers are unreadable.
  scope.keepHeaders();
  let answer: ReturnType<UpgradeWebSocket>;
  try {
    answer = protocol === undefined ? route.upgrade(request) : route.upgrade(request, { protocol });
  } catch (error) {
    // What `checkHandshake` did not foresee: nothing may stay behind (groups, cap, presence).
    await connection.abort(CloseCode.ABNORMAL_CLOSURE);
    return [400, "bad_handshake", `Bad handshake: ${(error as Error).message}`];
  }
  const socket = accepted.upgraded.socket = answer.socket;
  connection.attach(socket);
  route.meter.accepted++;
  route.meter.open++; // and one less when it closes (the connection counts that)
  route.live.add(connection, socket); // until the connection's `onFinished`
  if (identity.expiresAt !== undefined) {
    const what = identity.tokenId === undefined ? "Session" : "Token";
    closeAtExpiry(connection, identity.expiresAt, `${what} expired: log in again`);
  }
  log.websocket("CONNECT", scope.path, shownClient(scope.client, scope.peer));
  return answer.response;
}

// Deno's own upgrade, but for a handshake no server received (a communicator's): it would get a
// socket that never opens. Thrown, it is refused with 400 once `disconnect` undid `connect`.
function denoUpgrade(
  request: Request,
  options?: { protocol?: string },
): ReturnType<UpgradeWebSocket> {
  if (refusedByDenoUpgrade(request)) {
    throw new Error(
      "an in-process handshake cannot be upgraded by Deno's own WebSocket: " +
        "create the app with `createApp({ ..., upgrade: testUpgrade })`",
    );
  }
  return Deno.upgradeWebSocket(request, options);
}

const CLIENT_LEFT = "the client left during the handshake";
// The address Deno gives a connection its client has already reset.
const GONE_CLIENT = "0.0.0.0:0";
// Listens, so that the signal is aborted; what it says is read where it matters.
const noticeAbort = (): void => {};

// What a signed-in socket reads again when the layer may have lost a close meant for it, or a
// `session.recheck` asks.
function recheckOf(identity: Identity, services: Services): Recheck | undefined {
  if (identity.sessionId !== null) return sessionRecheck(services);
  // One closure per socket: a Django session's sockets are few next to a chat's anonymous ones.
  if (identity.external !== undefined) return externalSessionRecheck(identity.external);
  return identity.tokenId === undefined ? undefined : tokenSockets(services).recheck;
}

function refusal(status: number, reason: string, headers: HeadersInit): Response {
  const all = new Headers(headers);
  all.set("content-type", "text/plain; charset=utf-8");
  return new Response(`${reason}\n`, { status, headers: all });
}
