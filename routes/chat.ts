import {
  type AppRoute,
  type ChatHistory,
  type Handler,
  htmlResponse,
  page,
  pageAccount,
  type PresenceTracker,
  socket,
} from "../mod.ts";
import { chatIndex, chatRoom } from "../templates/chat.ts";
import { errorPageResponse } from "../templates/error.ts";
import { chatConsumer, isValidRoomName } from "../consumers/chat.ts";

/** `GET /chat/`: pick a room. */
export const chatIndexPage: Handler = async (request, context) => {
  const page = await pageAccount(request, context);
  return page.finish(htmlResponse(chatIndex(page.account)));
};

/** `GET /chat/<room>/`: the room. */
export const chatRoomPage: Handler = async (request, context) => {
  const room = context.params.room;
  if (!isValidRoomName(room)) {
    return errorPageResponse(
      404,
      "Not Found",
      "Room names are 1 to 100 characters, without control characters.",
    );
  }
  const page = await pageAccount(request, context);
  return page.finish(htmlResponse(chatRoom(room, page.account)));
};

/**
 * The Channels tutorial's chat: the room picker, the rooms and their sockets; with
 * `presence`, each room shows who is in it.
 */
export function chatRoutes(history: ChatHistory, presence?: PresenceTracker): AppRoute[] {
  return [
    page("GET", "/chat/", chatIndexPage),
    page("GET", "/chat/:room/", chatRoomPage),
    socket("/ws/chat/:room/", chatConsumer(history, presence)),
  ];
}
