/**
 * The site: the bundled apps' route tables in one, over the framework's services. Each app
 * brings its own routes; what an app starts (the username list) is handed to
 * the framework's app to close at shutdown.
 */
import { type App, createApp, healthRoutes, type Services, type UpgradeWebSocket } from "../mod.ts";
import { UsernameCache } from "../consumers/username_cache.ts";
import { errorPageResponse } from "../templates/error.ts";
import { chatRoutes } from "./chat.ts";
import { accountRoutes } from "./accounts.ts";
import { presenceRoutes } from "./presence.ts";
import { staticRoutes } from "./static.ts";
import { siteSendRoutes } from "./send.ts";
import { tutorialRoutes } from "./tutorials.ts";
import { tokenRoutes } from "./tokens.ts";
import { passwordRoutes } from "./password.ts";
import { adminRoutes } from "./admin.ts";
import { AdminStats } from "../consumers/admin.ts";

/** How the site is built besides its services. */
export interface SiteOptions {
  /** Replaces `Deno.upgradeWebSocket` (the testing communicator's `testUpgrade`). */
  upgrade?: UpgradeWebSocket;
}

/** Builds the site: chat, accounts, presence, the static files, `/_send/` and the probes. */
export function createSite(services: Services, options: SiteOptions = {}): App {
  // One list of usernames for the presence page and every presence socket.
  const usernames = new UsernameCache(services.users, services.layer);
  const admin = new AdminStats(services);
  return createApp({
    routes: [
      ...chatRoutes(services, services.presence),
      ...accountRoutes(),
      ...tokenRoutes(),
      ...passwordRoutes(),
      ...presenceRoutes(services, usernames),
      ...staticRoutes(),
      ...tutorialRoutes(services, usernames),
      ...siteSendRoutes(services.config),
      ...adminRoutes(services, admin),
      ...healthRoutes(),
    ],
    services,
    upgrade: options.upgrade,
    errorPage: errorPageResponse,
    owns: [usernames, admin],
  });
}
