/**
 * The framework's services over opened backends: users, sessions, login throttling and the
 * request identity (Channels' `AuthMiddlewareStack`), next to the layer, store and presence
 * they were built on. Apps reach them through each request's and socket's context.
 */
import type { Config } from "./config.ts";
import type { Identity, Services } from "./context.ts";
import type { GroupLayer } from "../layers/layer.ts";
import type { Store } from "../storage/store.ts";
import type { PresenceTracker } from "../layers/presence/contract.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { UserDirectory } from "../auth/users.ts";
import { SessionStore } from "../auth/sessions.ts";
import { LoginThrottle } from "../auth/throttle.ts";
import { identifyRequest } from "../auth/identify.ts";
import { log } from "./log.ts";

/** The opened backends services are built on. */
export interface ServiceBackends {
  /** The group layer. */
  readonly layer: GroupLayer;
  /** Where users, sessions and login throttle counts are kept. */
  readonly store: Store;
  /** Who is online. */
  readonly presence: PresenceTracker;
}

/** Builds the services of one app over `backends`, as `config` sets them up. */
export function createServices(config: Config, backends: ServiceBackends): Services {
  const hasher = new PasswordHasher({
    iterations: config.passwordIterations,
    allowWeak: config.allowWeakPasswordHashing,
  });
  if (config.allowWeakPasswordHashing) {
    log.warn("Weak password hashing is allowed: a setting for tests, never for production");
  }
  const { layer, store, presence } = backends;
  const users = new UserDirectory(store, hasher);
  const sessions = new SessionStore(store, { maxAgeSeconds: config.sessionMaxAgeSeconds });
  return {
    config,
    layer,
    store,
    presence,
    users,
    sessions,
    throttle: new LoginThrottle(store, config.loginThrottle),
    identify: (request): Promise<Identity> => identifyRequest(request, { sessions, users }),
  };
}
