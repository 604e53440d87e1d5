import type { Config } from "./config.ts";
import type { GroupLayer } from "../layers/layer.ts";
import type { Store } from "../storage/store.ts";
import type { Identity } from "../auth/identify.ts";
import type { UserDirectory } from "../auth/users.ts";
import type { SessionStore } from "../auth/sessions.ts";
import type { LoginThrottle } from "../auth/throttle.ts";
import type { PresenceTracker } from "../layers/presence/contract.ts";
import type { GroupStreams } from "../layers/streams/contract.ts";
import type { AccessTokens } from "../auth/tokens.ts";
import type { ServerMetrics } from "./server_metrics.ts";

/**
 * What the server was built with. Handlers reach it through their context (`context.services`);
 * a consumer is given what it needs by the function that builds it
 * (`notesConsumer(services.streams)`), as consumers have no context of their own.
 */
export interface Services {
  /** The configuration the server started with. */
  readonly config: Config;
  /**
   * The group layer, to send to groups from a handler. A group whose sockets follow its stream
   * (`StreamFollowing`) is sent to with `streams.publish`, which gives the event its offset and
   * keeps it for recovery: a `groupSend` to it is sent once, kept nowhere.
   */
  readonly layer: GroupLayer;
  /** Durable key-value state, shared as far as the layer reaches. */
  readonly store: Store;
  /** The registered users (kept in `store`). */
  readonly users: UserDirectory;
  /** Server-side sessions (kept in `store`). */
  readonly sessions: SessionStore;
  /** Failed-login counters (kept in `store`). */
  readonly throttle: LoginThrottle;
  /** Sign-up counters per client address (kept in `store`). */
  readonly signUpThrottle: LoginThrottle;
  /** Access tokens for clients that are not browsers (kept in `store`). */
  readonly tokens: AccessTokens;
  /** Who is online (in-process by default; shared across processes with a shared layer). */
  readonly presence: PresenceTracker;
  /** Retained group streams, shared as far as the layer reaches: offsets and recovery. */
  readonly streams: GroupStreams;
  /** What the server counts (`GET /metrics`, the admin page's snapshot). */
  readonly metrics: ServerMetrics;
  /**
   * Reads the request's session; anonymous when there is none. With `tokens` (WebSocket
   * upgrades), Django's session (`config.djangoSession`), then an access token, names the user
   * when no session of ours does; Django is asked at most a share of its questions for one
   * `client` address.
   */
  identify(request: Request, options?: { tokens?: boolean; client?: string }): Promise<Identity>;
}

/** What an HTTP handler gets besides the `Request`. */
export interface RequestContext {
  /** The request's URL, parsed once. */
  readonly url: URL;
  /** Decoded path parameters. */
  readonly params: Readonly<Record<string, string>>;
  /** The client's address as `host:port` (behind a trusted proxy, the one it forwarded). */
  readonly client: string;
  /**
   * The connection's own address as `host:port`: behind a trusted proxy, the proxy's. Absent
   * where a context was built by hand (a test's), `-` for a request an app was handed without
   * its `info` (`app.handle(request)`).
   */
  readonly peer?: string;
  /** The app's services. */
  readonly services: Services;
}

/** An HTTP handler: `Request` in, `Response` out. */
export type Handler = (request: Request, context: RequestContext) => Response | Promise<Response>;
