import {
  type AppRoute,
  type Handler,
  htmlResponse,
  logReason,
  page,
  pageAccount,
  type PresenceTracker,
  type Services,
  socket,
} from "../mod.ts";
import { chatIndex, chatRoom } from "../templates/chat.ts";
import { errorPageResponse } from "../templates/error.ts";
import { tutorialChatIndex, tutorialChatRoom } from "../templates/tutorial_chat.ts";
import { chatConsumer } from "../consumers/chat.ts";
import { canonicalRoomName, chatNaming, roomNameProblem } from "../consumers/chat_rooms.ts";
import { DICE_CHANNEL } from "../consumers/dice_worker.ts";

/** `GET /chat/`: pick a room. */
export const chatIndexPage: Handler = async (request, context) => {
  const page = await pageAccount(request, context);
  return page.finish(htmlResponse(chatIndex(page.account)));
};

/** `GET /chat/<room>/`: the room. */
export const chatRoomPage: Handler = async (request, context) => {
  const room = context.params.room;
  const canonical = toCanonicalRoom("/chat/", room, context.url);
  if (canonical !== null) return canonical;
  const problem = roomNameProblem(room);
  if (problem !== null) return roomNotFound(problem, ROOM_NAMES);
  const refused = chatNaming(context.services.layer).refusal(room);
  if (refused !== null) return roomNotFound(refused);
  const page = await pageAccount(request, context);
  return page.finish(htmlResponse(chatRoom(room, page.account)));
};

/** `GET /tutorial/chat/`: the Channels tutorial's own `index.html`. */
export const tutorialChatIndexPage: Handler = () => htmlResponse(tutorialChatIndex());

/** `GET /tutorial/chat/<room>/`: the Channels tutorial's own `room.html`. */
export const tutorialChatRoomPage: Handler = (_request, context) => {
  const room = context.params.room;
  const canonical = toCanonicalRoom("/tutorial/chat/", room, context.url);
  if (canonical !== null) return canonical;
  const problem = roomNameProblem(room);
  if (problem !== null) return roomNotFound(problem, ROOM_NAMES);
  const refused = chatNaming(context.services.layer).refusal(room);
  if (refused !== null) return roomNotFound(refused);
  if (TUTORIAL_UNSAFE.test(room)) return roomNotFound(TUTORIAL_UNSAFE_REASON);
  return htmlResponse(tutorialChatRoom(room));
};

// The tutorial's script joins the room's name into its socket's URL as it is
// (`'/ws/chat/' + roomName + '/'`): a name with `/` (or `\`, which a browser reads as one in a
// ws: URL), `?`, `#` or `%` would open another room's socket (`q/../lobby` is the lobby's), or
// none.
const TUTORIAL_UNSAFE = /[/\\?#%]/;
const TUTORIAL_UNSAFE_REASON = "The Channels tutorial's page cannot open a room whose name " +
  "holds /, \\, ?, # or %: its script puts the name into the socket's address as it is. The " +
  "site's own room page, at /chat/<room>/, opens it.";

const ROOM_NAMES =
  "Room names are 1 to 100 characters, without control characters or spaces at either end.";

// The log line says why with the text the room's socket refuses it with (its REJECT line).
function roomNotFound(why: string, shown = why): Response {
  return logReason(errorPageResponse(404, "Not Found", shown), why);
}

// The tutorial's room picker sends what was typed, spaces and all ("lobby "): such a name is
// sent on to the room without them, as the site's own picker trims it; and a name written in
// decomposed Unicode, to the same room's composed name, which its sockets join.
function toCanonicalRoom(prefix: string, room: string, url: URL): Response | null {
  const canonical = canonicalRoomName(room);
  if (canonical === null) return null;
  const location = `${prefix}${encodeURIComponent(canonical)}/${url.search}`;
  return new Response(null, { status: 301, headers: { location } });
}

/** The chat's slash commands and the workers' channels they go to. */
export const CHAT_COMMANDS: Readonly<Record<string, string>> = { roll: DICE_CHANNEL };

/**
 * The Channels tutorial's chat: the room picker, the rooms and their sockets; with
 * `presence`, each room shows who is in it. Rooms keep their messages in `services.streams`
 * for the configured history window, so clients can recover what they missed. The tutorial's own pages, unchanged, are at
 * `/tutorial/chat/` and speak to the same sockets.
 */
export function chatRoutes(
  services: Pick<Services, "streams" | "config" | "layer">,
  presence?: PresenceTracker,
): AppRoute[] {
  const retention = services.config.historyWindow;
  // `/roll 2d6` goes to the dice worker (`routes/workers.ts`), which answers the room.
  const options = { retention, naming: chatNaming(services.layer), commands: CHAT_COMMANDS };
  return [
    page("GET", "/chat/", chatIndexPage),
    page("GET", "/chat/:room/", chatRoomPage),
    page("GET", "/tutorial/chat/", tutorialChatIndexPage),
    page("GET", "/tutorial/chat/:room/", tutorialChatRoomPage),
    socket("/ws/chat/:room/", chatConsumer(services.streams, presence, options)),
  ];
}
