/**
 * The framework's services over opened backends: users, sessions, login throttling and the
 * request identity (Channels' `AuthMiddlewareStack`), next to the layer, store and presence
 * they were built on. Apps reach them through each request's and socket's context.
 */
import type { Config } from "./config.ts";
import type { Services } from "./context.ts";
import type { Identity } from "../auth/identify.ts";
import type { GroupLayer } from "../layers/layer.ts";
import type { Store } from "../storage/store.ts";
import type { PresenceTracker } from "../layers/presence/contract.ts";
import type { GroupStreams } from "../layers/streams/contract.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { UserDirectory } from "../auth/users.ts";
import { SessionStore } from "../auth/sessions.ts";
import { LoginThrottle } from "../auth/throttle.ts";
import { AccessTokens } from "../auth/tokens.ts";
import { identifyRequest } from "../auth/identify.ts";
import { DjangoSessionIdentity } from "../auth/django_session.ts";
import { SESSION_COOKIE } from "../auth/cookies.ts";
import { log } from "../telemetry/log.ts";
import { ServerMetrics } from "./server_metrics.ts";

/** The opened backends services are built on. */
export interface ServiceBackends {
  /** The group layer. */
  readonly layer: GroupLayer;
  /** Where users, sessions and login throttle counts are kept. */
  readonly store: Store;
  /** Who is online. */
  readonly presence: PresenceTracker;
  /** Retained group streams: offsets, recovery, history. */
  readonly streams: GroupStreams;
}

/** What an app tells its services beside the configuration. */
export interface ServiceOptions {
  /**
   * Names the app shows for no account (a chat's "Anonymous" for visitors, say). A Django user
   * named so, in any case or with Cyrillic or Greek letters drawn like Latin ones, is refused
   * at the handshake, as one named as an account here is. Pass the same list to
   * `signUpErrors` for sign-ups.
   */
  reservedUsernames?: readonly string[];
}

/** Builds the services of one app over `backends`, as `config` sets them up. */
export function createServices(
  config: Config,
  backends: ServiceBackends,
  options: ServiceOptions = {},
): Services {
  const hasher = new PasswordHasher({
    iterations: config.passwordIterations,
    allowWeak: config.allowWeakPasswordHashing,
  });
  if (config.allowWeakPasswordHashing) {
    log.warn("Weak password hashing is allowed: a setting for tests, never for production");
  }
  const { layer, store, presence, streams } = backends;
  const users = new UserDirectory(store, hasher);
  const sessions = new SessionStore(store, { maxAgeSeconds: config.sessionMaxAgeSeconds });
  const tokens = new AccessTokens(store, {
    maxAgeSeconds: config.tokenMaxAgeSeconds,
    secret: config.tokenSecret,
  });
  const django = djangoSessions(config);
  const reservedUsernames = options.reservedUsernames ?? [];
  return {
    config,
    layer,
    store,
    presence,
    streams,
    users,
    sessions,
    throttle: new LoginThrottle(store, config.loginThrottle),
    signUpThrottle: new LoginThrottle(
      store,
      config.signUpThrottle,
      { prefix: "signup_attempts" },
    ),
    tokens,
    metrics: new ServerMetrics({ layer, streams }),
    identify: (request, options): Promise<Identity> =>
      identifyRequest(request, { sessions, users, tokens, django, reservedUsernames }, options),
  };
}

// Django's sessions, when `DJANGO_SESSION_URL` names its who-am-I view.
function djangoSessions(config: Config): DjangoSessionIdentity | undefined {
  if (config.djangoSession === null) return undefined;
  const { url, cookie } = config.djangoSession;
  const where = new URL(url).origin + new URL(url).pathname; // not a password the URL may hold
  log.info(
    `WebSocket upgrades with a Django session cookie (${cookie}) are identified by ${where}`,
  );
  if (cookie === SESSION_COOKIE) {
    // One host's browser keeps one cookie of a name: Django's and ours would overwrite each
    // other, and a session of ours Django does not know would be asked of Django.
    log.warn(
      `DJANGO_SESSION_COOKIE is ${cookie}, this server's own session cookie: serve only /ws/… ` +
        "from this host, or give Django's cookie another name (its SESSION_COOKIE_NAME)",
    );
  }
  if (config.layer !== "channels_redis") {
    log.warn(
      `A log-out in Django cannot close this server's sockets with LAYER=${config.layer}: ` +
        "its user_logged_out handler reaches them through LAYER=channels_redis only",
    );
  }
  return new DjangoSessionIdentity(config.djangoSession);
}
