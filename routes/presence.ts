import {
  type AppRoute,
  type Handler,
  htmlResponse,
  loginRequired,
  page,
  type Services,
  socket,
} from "../mod.ts";
import { presencePage } from "../templates/presence.ts";
import { presenceConsumer } from "../consumers/presence.ts";
import { presenceSnapshot } from "../consumers/presence_snapshot.ts";
import type { UsernameSource } from "../consumers/username_cache.ts";

/**
 * `GET /`: the live list of users (login required: anonymous visitors go to log in first).
 * `users` lists every username (the cache the presence consumer shares).
 */
export function presenceIndexPage(users: UsernameSource): Handler {
  return loginRequired(async (_request, context, page) => {
    const me = page.account.username;
    const [registered, state] = await Promise.all([
      users.usernames(),
      context.services.presence.state(),
    ]);
    // The page is about to open its socket: its own user is online.
    const list = presenceSnapshot(registered, state.online, me);
    const body = presencePage({ account: page.account, users: list, recent: state.recent });
    return page.finish(htmlResponse(body));
  });
}

/** The live user list and its socket (login required). */
export function presenceRoutes(services: Services, usernames: UsernameSource): AppRoute[] {
  const consumer = presenceConsumer({
    presence: services.presence,
    sessions: services.sessions,
    users: usernames,
  });
  return [
    page("GET", "/", presenceIndexPage(usernames)),
    socket("/ws/presence/state/", consumer, { loginRequired: true }),
  ];
}
