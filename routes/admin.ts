/**
 * `/admin/`: the live admin page, for staff users only (`deno task createsuperuser`). An
 * anonymous visitor is sent to log in; a signed-in user who is not staff gets 403. The page's
 * socket, `WS /ws/admin/`, requires a login, an allowed Origin and a staff user too.
 */
import {
  type AppRoute,
  type Handler,
  htmlResponse,
  loginRequired,
  logReason,
  page,
  type Services,
  socket,
} from "../mod.ts";
import { adminConsumer, type AdminStats, NOT_STAFF } from "../consumers/admin.ts";
import { adminPage } from "../templates/admin.ts";
import { errorPageResponse } from "../templates/error.ts";

/** Where the page is. */
export const ADMIN_PATH = "/admin/";
/** Where its socket is. */
export const ADMIN_SOCKET_PATH = "/ws/admin/";

/** `GET /admin/`: staff only. */
export const adminIndex: Handler = loginRequired(async (_request, context, page) => {
  const user = await context.services.users.find(page.account.username);
  if (user?.staff !== true) {
    const forbidden = errorPageResponse(
      403,
      "Forbidden",
      "The admin page is for staff users only.",
    );
    return page.finish(logReason(forbidden, NOT_STAFF));
  }
  const response = page.finish(htmlResponse(adminPage(page.account)));
  response.headers.set("cache-control", "no-store");
  return response;
});

/** The admin page and its socket, over `stats` (this process's publisher of admin rows). */
export function adminRoutes(services: Services, stats: AdminStats): AppRoute[] {
  return [
    page("GET", ADMIN_PATH, adminIndex),
    socket(ADMIN_SOCKET_PATH, adminConsumer(services, stats), { loginRequired: true }),
  ];
}
