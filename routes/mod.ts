/**
 * The route table: every page and WebSocket route of the app, as data. Order does not matter;
 * the router finds exact paths first.
 */
import type { Handler, Services } from "../server/context.ts";
import type { Route } from "./router.ts";
import type { Consumer } from "../consumers/consumer.ts";
import {
  type LiveConnections,
  type UpgradeWebSocket,
  websocketHandler,
  type WebSocketRouteOptions,
} from "../consumers/websocket_route.ts";
import { chatConsumer } from "../consumers/chat.ts";
import { echoConsumer } from "../consumers/echo.ts";
import { ChatHistory } from "../storage/chat_history.ts";
import { chatIndexPage, chatRoomPage } from "./chat.ts";
import { staticFiles } from "./static.ts";
import { SEND_PATH, sendEvent } from "./send.ts";
import { presenceIndexPage } from "./presence.ts";
import { presenceConsumer } from "../consumers/presence.ts";
import { UsernameCache } from "../consumers/_presence_users.ts";
import { logInForm, logInSubmit, logOut, signUpForm, signUpSubmit } from "./accounts.ts";

/** A handler and whether it is a WebSocket route (which logs its own handshake lines). */
export interface RouteHandler {
  handle: Handler;
  websocket: boolean;
}

/** What the table needs to build its WebSocket routes. */
export interface RouteTableOptions {
  services: Services;
  live: LiveConnections;
  upgrade?: UpgradeWebSocket;
}

/** The app's routes. */
export function routeTable(options: RouteTableOptions): Route<RouteHandler>[] {
  const history = new ChatHistory(options.services.store);
  const { services } = options;
  // One list of usernames for the presence page and every presence socket.
  const usernames = new UsernameCache(services.users, services.layer);
  const page = (method: string, path: string, handle: Handler): Route<RouteHandler> => ({
    method,
    path,
    handler: { handle, websocket: false },
  });
  const socket = (
    path: string,
    consumer: Consumer,
    guard: WebSocketRouteOptions = {},
  ): Route<RouteHandler> => ({
    method: "GET",
    path,
    handler: {
      handle: websocketHandler(consumer, {
        ...guard,
        live: options.live,
        upgrade: options.upgrade,
      }),
      websocket: true,
    },
  });
  return [
    page("GET", "/", presenceIndexPage(usernames)),
    page("GET", "/chat/", chatIndexPage),
    page("GET", "/chat/:room/", chatRoomPage),
    page("GET", "/static/*", staticFiles),
    page("GET", "/sign_up/", signUpForm),
    page("POST", "/sign_up/", signUpSubmit),
    page("GET", "/log_in/", logInForm),
    page("POST", "/log_in/", logInSubmit),
    page("POST", "/log_out/", logOut),
    socket("/ws/chat/:room/", chatConsumer(history)),
    socket("/ws/echo/", echoConsumer),
    socket(
      "/ws/presence/",
      presenceConsumer({
        presence: services.presence,
        sessions: services.sessions,
        users: usernames,
      }),
      { loginRequired: true },
    ),
    // Off (404) unless a token is configured: an endpoint that sends as the server.
    ...(options.services.config.sendToken ? [page("POST", SEND_PATH, sendEvent)] : []),
  ];
}
