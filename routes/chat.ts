import type { Handler } from "../server/context.ts";
import { htmlResponse } from "../templates/html.ts";
import { chatIndex, chatRoom } from "../templates/chat.ts";
import { isValidRoomName } from "../consumers/chat.ts";
import { errorResponse } from "../server/app.ts";
import { pageAccount } from "../auth/page_account.ts";

/** `GET /chat/`: pick a room. */
export const chatIndexPage: Handler = async (request, context) => {
  const page = await pageAccount(request, context);
  return page.finish(htmlResponse(chatIndex(page.account)));
};

/** `GET /chat/<room>/`: the room. */
export const chatRoomPage: Handler = async (request, context) => {
  const room = context.params.room;
  if (!isValidRoomName(room)) {
    return errorResponse(
      404,
      "Not Found",
      "Room names are 1 to 100 characters, without control characters.",
    );
  }
  const page = await pageAccount(request, context);
  return page.finish(htmlResponse(chatRoom(room, page.account)));
};
