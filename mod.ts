/**
 * Channels for Deno: what Django Channels is to Django. Route HTTP requests and WebSockets
 * through one small router, run a consumer per socket, and let consumers talk through a group
 * layer that reaches across processes (in-process, BroadcastChannel + Deno KV, or Redis).
 *
 * This module is the whole public surface. Tests import `./testing.ts` (the communicator).
 *
 * @example
 * ```ts
 * import {
 *   type Consumer, createApp, createServices, loadConfig, log, openBackends, page, serveApp,
 *   socket, stopOnSignals,
 * } from "@channels/deno";
 *
 * const counter: Consumer = (conn) => ({
 *   async connect() {
 *     await conn.groupAdd("counter");
 *   },
 *   async receive() {
 *     await conn.groupSend("counter", { type: "counter.bump" });
 *   },
 *   events: { "counter.bump": () => conn.send("bump") },
 * });
 *
 * const config = loadConfig(Deno.args, Deno.env.toObject());
 * log.setLevel(config.logLevel); // LOG_LEVEL: the log is the process's, so the app sets it
 * const backends = await openBackends(config);
 * const app = createApp({
 *   routes: [page("GET", "/", () => new Response("Hello")), socket("/ws/counter/", counter)],
 *   services: createServices(config, backends),
 * });
 * const server = await serveApp(app, {
 *   hostname: config.host,
 *   port: config.port,
 *   onClosed: backends.close,
 * });
 * stopOnSignals(server, { drainWindowMs: config.drainWindowMs }); // SIGTERM drains, Ctrl-C stops
 * ```
 *
 * @module
 */

// The app, its routes and how it is served.
export {
  type App,
  type AppOptions,
  type Closable,
  createApp,
  errorResponse,
} from "./server/app.ts";
export type { ErrorPage } from "./server/app.ts";
export { type AppRoute, page, type RouteTarget, socket } from "./server/routes.ts";
export type { WebSocketRouteOptions } from "./server/routes.ts";
export { type Route, type RouteMatch, Router } from "./server/router.ts";
export type { Handler, RequestContext, Services } from "./server/context.ts";
export { createServices, type ServiceBackends, type ServiceOptions } from "./server/services.ts";
export {
  appendFromOutside,
  type Backends,
  type BackendsOptions,
  channelSendFromOutside,
  isChannelsCompatible,
  layerCrossesProcesses,
  openBackends,
  publishFromOutside,
  workerConfig,
} from "./server/backends.ts";
export { type RunningServer, serveApp, type ServeOptions } from "./server/start.ts";
export { stopOnSignals, type StopOnSignalsOptions, type Stoppable } from "./server/signals.ts";
// What a frame counts against `Connection.sendCapacity`, for a consumer about to send many.
export { frameBytes } from "./server/_send_checks.ts";
export {
  runWorker,
  type StartServer,
  startWorkers,
  WORKER_HANG_MS,
  WORKER_START_MS,
  type WorkerPool,
  type WorkerPoolOptions,
} from "./server/workers.ts";
export {
  type ChannelNameRouter,
  channelNameRouter,
  type ChannelWorker,
  runChannelWorkers,
  type RunChannelWorkersOptions,
  type RunningWorkers,
  WORKER_STOP_MS,
  type WorkerContext,
  type WorkerHooks,
  type WorkerStats,
} from "./server/channel_workers.ts";
export {
  parseWorkerArgs,
  runWorkerProcess,
  WORKER_PROCESS_STOP_MS,
} from "./server/worker_process.ts";
export { asksForHelp, settingsHelp } from "./server/command_help.ts";
export {
  closeSpread,
  type DrainClock,
  drainSchedule,
  type SpreadOptions,
  SYSTEM_DRAIN_CLOCK,
} from "./server/drain.ts";
export {
  type Config,
  configFlags,
  DEFAULT_CONFIG,
  type DjangoSessionSettings,
  type Env,
  type LayerKind,
  loadConfig,
  redisLingerIgnoredBecause,
  secretsOnCommandLine,
  settingTypos,
} from "./server/config.ts";
export { formatAddr, log, type Logger, type LogLevel, type LogSink } from "./telemetry/log.ts";

// Metrics (`GET /metrics`) and the per-process snapshot (an admin page).
export {
  type MetricsSources,
  type ProcessSnapshot,
  REFUSAL_REASONS,
  type RefusalReason,
  RouteMeter,
  ServerMetrics,
} from "./server/server_metrics.ts";
export {
  Histogram,
  LATENCY_BUCKETS,
  MAX_SERIES_PER_METRIC,
  Metric,
  MetricsRegistry,
  type MetricType,
  PROMETHEUS_CONTENT_TYPE,
  type Sample,
  type SeriesBound,
} from "./telemetry/metrics.ts";
export {
  METRICS_PATH,
  metricsHandler,
  metricsResponse,
  serveMetrics,
} from "./server/metrics_route.ts";
export { HEALTH_PATH, type HealthPaths, healthRoutes, READY_PATH } from "./server/health_route.ts";
export type { Listener } from "./server/_listener.ts";
export { type RedisHealth, redisHealth } from "./storage/redis_health.ts";
export { LOG_REASON_HEADER, logReason } from "./server/log_reason.ts";

// Consumers and the WebSocket handshake.
export type { Connection, Consumer, ConsumerHooks, Scope } from "./server/consumer.ts";
export { ANONYMOUS, type ExternalSession, type Identity, type User } from "./auth/identify.ts";
export { CLOSE_EVENT, RECHECK_EVENT } from "./server/_connection_constants.ts";
export {
  asFrameRef,
  CloseCode,
  closeReason,
  describeCloseCode,
  errorFrame,
  type FrameRef,
  frameRef,
  isSendableCloseCode,
  MAX_CLOSE_REASON_BYTES,
  MAX_FRAME_REF_LENGTH,
  ProtocolError,
  refOf,
} from "./server/close_codes.ts";
export { isOriginAllowed, type OriginPolicy } from "./auth/origin.ts";
export { checkHandshake, type HandshakeRefusal } from "./server/handshake.ts";
export { KEPT_HANDSHAKE_HEADERS, type UpgradeWebSocket } from "./server/websocket_route.ts";
export {
  type CloseAllOptions,
  LiveConnections,
  type TrackedConnection,
} from "./server/live_connections.ts";
export type { ConnectionLimits, SocketLike } from "./server/_socket.ts";
export {
  type CapLease,
  type CapLimits,
  type CapStats,
  ConnectionCaps,
} from "./server/connection_caps.ts";

// Pages: escaping, static files, the browser client, request bodies.
export { escapeHtml, html, htmlResponse, type Interpolation, SafeHtml } from "./server/html.ts";
export { staticFileHandler, type StaticFileOptions } from "./server/static_files.ts";
export {
  CLIENT_FILES,
  type ClientRouteOptions,
  clientRoutes,
  DEFAULT_CLIENT_PATH,
} from "./server/client_files.ts";
export {
  BODY_IDLE_MS,
  BodyCutShortError,
  BodyNotUtf8Error,
  readBodyText,
} from "./server/request_body.ts";
export {
  type OutsideSend,
  type OutsideSendRule,
  SEND_PATH,
  sendHandler,
  type SendRouteOptions,
  sendRoutes,
} from "./server/send_route.ts";

// The group layer.
export type {
  Deliver,
  GroupLayer,
  GroupSize,
  LayerEvent,
  LayerStats,
  ListenOptions,
  SendResult,
  Unlisten,
} from "./layers/layer.ts";
export {
  isNamedChannel,
  validateEvent,
  validateGroupName,
  validateNamedChannel,
} from "./layers/layer.ts";
// For a layer of your own: what every member gets is checked and frozen (see `GroupLayer`).
export { checkedEventJson, freezeEvent, MAX_EVENT_DEPTH } from "./layers/event_json.ts";
export { InMemoryLayer } from "./layers/in_memory.ts";
export type { RedisForm, RedisNodeAddress } from "./storage/redis_connection.ts";

// Retained group streams: offsets, epochs, recovery.
export {
  DEFAULT_RETENTION,
  type GroupStreams,
  type PublishOptions,
  PublishUnconfirmedError,
  PublishUndeliveredError,
  retainedAtMost,
  SINCE_TOO_LARGE,
  type SinceOptions,
  type StreamEvent,
  type StreamPosition,
  type StreamPublished,
  type StreamRead,
  type StreamRetention,
} from "./layers/streams/contract.ts";
export { MemoryStreams, type MemoryStreamsOptions } from "./layers/streams/memory.ts";
// The stream protocol's server side (what the client module speaks): recovery, once, in order.
export {
  ackFor,
  type AckFrame,
  DEFAULT_HISTORY_SIZE,
  RECOVERED,
  type StreamFollower,
  StreamFollowing,
  type StreamFollowingOptions,
} from "./server/stream_follower.ts";

// Presence.
export {
  PRESENCE_DIFF,
  PRESENCE_GROUP,
  type PresenceClock,
  type PresenceDiff,
  type PresenceEvent,
  presenceGroup,
  type PresenceMeta,
  type PresenceOptions,
  type PresenceState,
  type PresenceTracker,
  SITE_TOPIC,
  type UntrackOptions,
} from "./layers/presence/contract.ts";
export { createLocalPresence } from "./layers/presence/memory.ts";
// A presence backend of your own: it counts connections, the core does the rest.
export type {
  PresenceBackend,
  // Named apart from the server's own `TrackedConnection` (a socket the server keeps).
  TrackedConnection as PresenceConnection,
} from "./layers/presence/contract.ts";
export { PresenceCore } from "./layers/presence/core.ts";

// Accounts: users, sessions, CSRF, login throttling (Django's auth, sessions and CSRF).
export {
  isValid,
  MAX_USERNAME_LENGTH,
  MIN_PASSWORD_LENGTH,
  newPasswordErrors,
  NULL_CHARACTERS,
  PASSWORD_MISMATCH,
  type SignUpErrors,
  signUpErrors,
  type SignUpInput,
  usernameKey,
} from "./auth/account_rules.ts";
export {
  clearSessionCookie,
  isSecureRequest,
  readCookies,
  SESSION_COOKIE,
  setCsrfCookie,
  setSessionCookie,
} from "./auth/cookies.ts";
export { CSRF_FIELD, newCsrfSecret } from "./auth/csrf.ts";
export { FormRefusal, readProtectedForm } from "./server/forms.ts";
export { type AccountView, type PageAccount, pageAccount } from "./server/page_account.ts";
export {
  loginRequired,
  type LoginRequiredOptions,
  type SignedInHandler,
  type SignedInPage,
} from "./server/login_required.ts";
export {
  type EndAllOptions,
  sessionGroup,
  type SessionRecord,
  SessionStore,
  type SessionStoreOptions,
} from "./auth/sessions.ts";
export {
  clientHost,
  type LoginAttempt,
  LoginThrottle,
  type Throttled,
  type ThrottleLimits,
} from "./auth/throttle.ts";
export {
  ACCOUNT_EVENTS_GROUP,
  UserChangeConflictError,
  UserDirectory,
  type UserRecord,
} from "./auth/users.ts";
export {
  AccessTokens,
  type AccessTokensOptions,
  type IssuedToken,
  MAX_TOKENS_PER_USER,
  presentedToken,
  redactedTarget,
  type TokenCheck,
  type TokenClaims,
  type TokenSummary,
  TooManyTokensError,
} from "./auth/tokens.ts";
export { REVOCATION_CHECK_MS, tokenGroup } from "./auth/token_revocations.ts";
export { browserGroup } from "./auth/browser_group.ts";
export { closeTokenSockets, TOKEN_REVOKED } from "./server/_token_sockets.ts";
export {
  changePassword,
  type ChangePasswordOptions,
  PASSWORD_CHANGE_CHECK_MS,
  PASSWORD_CHANGED,
  type PasswordChange,
} from "./server/password_change.ts";
export {
  closeEndedSession,
  endSession,
  LOGGED_OUT,
  SESSION_RENEWED,
} from "./server/ended_sessions.ts";
export { logIn } from "./server/log_in.ts";

// Storage.
export {
  PartlyWrittenError,
  sortableId,
  sortableIdFrom,
  type Store,
  type StoreChange,
  type StoreEntry,
  type StoreKey,
} from "./storage/store.ts";
