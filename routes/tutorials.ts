/**
 * The small apps of other tutorials this project replaces, each on the path its tutorial uses
 * so the tutorial's own client code runs unchanged.
 */
import {
  type AppRoute,
  type Handler,
  htmlResponse,
  loginRequired,
  page,
  type Services,
  socket,
} from "../mod.ts";
import { echoConsumer } from "../consumers/echo.ts";
import { realpythonUsersConsumer } from "../consumers/realpython_users.ts";
import { presenceIndicatorConsumer } from "../consumers/presence_indicator.ts";
import { authEchoConsumer } from "../consumers/auth_echo.ts";
import { groupRelayConsumer } from "../consumers/group_relay.ts";
import type { UsernameSource } from "../consumers/username_cache.ts";
import { type ListedUser, presenceIndicatorPage, userListPage } from "../templates/tutorials.ts";

/**
 * RealPython's user list page. Not `/users/`, where its socket is: the router picks one row per
 * path and method, and a page and a socket are both GETs (Django Channels routes them apart).
 * The tutorial's script builds its socket URL from the host alone, so the page may be anywhere.
 */
export const USER_LIST_PATH = "/users/list/";

/** The "Online Presence Indicator" tutorial's page. */
export const PRESENCE_INDICATOR_PATH = "/presence/";

/** RealPython's `user_list` view: every registered user, Online or Offline. */
export function userListHandler(users: UsernameSource): Handler {
  return loginRequired(async (_request, context, page) => {
    const [registered, state] = await Promise.all([
      users.usernames(),
      context.services.presence.state(),
    ]);
    // The page is about to open its socket: its own user is online.
    const online = new Set([...state.online, page.account.username]);
    const list: ListedUser[] = registered.map((username) => ({
      username,
      online: online.has(username),
    }));
    return page.finish(htmlResponse(userListPage({ account: page.account, users: list })));
  });
}

/** The "Online Presence Indicator" tutorial's `index` view. */
export const presenceIndicatorHandler: Handler = loginRequired((_request, _context, page) =>
  page.finish(htmlResponse(presenceIndicatorPage(page.account)))
);

/** The tutorials' pages and WebSocket routes. */
export function tutorialRoutes(services: Services, usernames: UsernameSource): AppRoute[] {
  return [
    socket("/ws/echo/", echoConsumer),
    // RealPython "Getting Started with Django Channels".
    page("GET", USER_LIST_PATH, userListHandler(usernames)),
    socket("/users/", realpythonUsersConsumer(services), { loginRequired: true }),
    // "Online Presence Indicator".
    page("GET", PRESENCE_INDICATOR_PATH, presenceIndicatorHandler),
    socket("/ws/presence/", presenceIndicatorConsumer(services), { loginRequired: true }),
    // The AuthMiddlewareStack echo.
    socket("/ws/myapp/:user_id/", authEchoConsumer, { loginRequired: true }),
    // Wu Peiqi's group chat: `re_path(r'ws/(?P<group>\w+)/$', ...)`. Exact paths such as
    // /ws/echo/ and /ws/presence/ come first in the router, whatever the order here.
    socket("/ws/:group(\\w+)/", groupRelayConsumer),
  ];
}
