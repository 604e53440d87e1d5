import {
  type ChatHistory,
  type ChatMessage,
  type Consumer,
  type LayerEvent,
  log,
  PRESENCE_DIFF,
  presenceGroup,
  type PresenceTracker,
  ProtocolError,
  sessionGroup,
  sortableId,
} from "../mod.ts";
import { presenceSnapshot } from "./presence_snapshot.ts";

/** Longest room name, in characters. */
export const MAX_ROOM_NAME = 100;
/** Longest chat message, in characters (the frame limit is separate and larger). */
export const MAX_CHAT_MESSAGE = 10_000;
/** Shown as the author of anonymous users' messages. */
export const ANONYMOUS_AUTHOR = "Anonymous";

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** True for a usable room name: 1 to 100 characters, no control characters, not `.` or `..`. */
export function isValidRoomName(room: string): boolean {
  const length = [...room].length;
  // "." and ".." are path segments that browsers resolve away: such a room could never be opened.
  if (room === "." || room === "..") return false;
  return length >= 1 && length <= MAX_ROOM_NAME && !CONTROL.test(room) && room.trim() === room;
}

/** The group of a room's sockets. */
export function chatGroup(room: string): string {
  return `chat.${room}`;
}

/** The presence topic of a room: who is in it (the same name as its group). */
export function chatPresenceTopic(room: string): string {
  return chatGroup(room);
}

/** The first presence frame of a room socket that asked for them. */
export const ROOM_PRESENCE_STATE = "presence.state";

/**
 * The chat room of the Django Channels tutorial: a client sends `{"message": "..."}`, every
 * socket in the room (the sender's too) receives the message with its id, author and time.
 * On entry, the room's recent history arrives first, each frame marked `"history": true`.
 *
 * With `presence`, every socket is tracked in the room's topic while it is open (released
 * with grace, so a reload does not flicker), under its user's name or, for anonymous
 * visitors, `"Anonymous"` (they all count as that one member). Only a socket opened with
 * `?presence=1` (the site's own page) gets presence frames: `{"type": "presence.state",
 * "users": [{"username", "online"}]}` after the history, then `{"type": "presence.diff",
 * "joins", "leaves", "topic", "time"}`. The tutorial's page prints every frame's `message`,
 * so it must not get them. Presence work happens on connect and disconnect only.
 */
export function chatConsumer(history: ChatHistory, presence?: PresenceTracker): Consumer {
  return (conn) => {
    const room = conn.scope.params.room ?? "";
    const group = chatGroup(room);
    const member = conn.scope.user.username ?? ANONYMOUS_AUTHOR;
    const listing = presence !== undefined && conn.scope.query.get("presence") === "1";
    // Diffs that arrive before the state frame went out wait for it (see presence.ts).
    let early: LayerEvent[] | null = [];
    const sendHistory = async () => {
      for (const message of await history.recent(room)) {
        conn.sendJson({ ...message, history: true });
      }
    };
    return {
      async connect() {
        if (!isValidRoomName(room)) return false;
        await conn.groupAdd(group);
        if (presence === undefined) return sendHistory();
        const topic = chatPresenceTopic(room);
        if (listing) await conn.groupAdd(presenceGroup(topic));
        const sessionId = conn.scope.sessionId;
        const session = sessionId === null ? null : await sessionGroup(sessionId);
        await presence.track(member, conn.channelName, { session }, topic);
        try {
          await sendHistory();
          if (!listing) return;
          const { online } = await presence.state(topic);
          conn.sendJson({ type: ROOM_PRESENCE_STATE, users: presenceSnapshot([], online, member) });
          for (const event of early ?? []) conn.sendJson(event);
          early = null;
        } catch (error) {
          // A refused socket never runs `disconnect`: untrack here, or the member is a ghost.
          await presence.untrack(conn.channelName);
          throw error;
        }
      },
      receiveJson(value) {
        const text = messageText(value);
        const now = Date.now(); // one clock reading for the id and the time
        const message: ChatMessage = {
          type: "chat.message",
          id: sortableId(now),
          room,
          message: text,
          author: conn.scope.user.username ?? ANONYMOUS_AUTHOR,
          time: new Date(now).toISOString(),
        };
        // Not awaited: the layer keeps one sender's events in order, so this socket's next
        // frame need not wait for the broker's answer (and the hook costs no promise).
        conn.groupSend(group, { type: "chat.message", message }).then(
          // Written in batches: a slow store never holds up a broadcast. History logs its own
          // failures. The layer froze the message, so its JSON is the one the frames carried.
          () => history.append(message),
          (error) => {
            log.warn(`Chat message to "${room}" not sent`, error);
            conn.sendError("Message not sent: the server cannot reach the other members right now");
          },
        );
      },
      // What the room accepted reaches the store as its writer leaves, so a page that enters
      // via another process sees it at once (shutdown is covered by the app closing history).
      disconnect: async () => {
        await Promise.all([
          history.flush(),
          presence?.untrack(conn.channelName, { grace: true }),
        ]);
      },
      events: {
        // The layer's event object is the frame: one serialisation serves every socket.
        [PRESENCE_DIFF]: (event) => {
          if (early !== null) early.push(event);
          else conn.sendJson(event);
        },
        "chat.message": (event) => {
          const message = chatMessageOf(event, room);
          if (message !== null) conn.sendJson(message);
        },
      },
    };
  };
}

function messageText(value: unknown): string {
  const message = (value as { message?: unknown } | null)?.message;
  if (typeof value !== "object" || value === null || typeof message !== "string") {
    throw new ProtocolError('Expected a JSON object like {"message": "Hello"}');
  }
  if (message.trim() === "") throw new ProtocolError("Message is empty");
  if (message.length > MAX_CHAT_MESSAGE) {
    throw new ProtocolError(`Message is too long: at most ${MAX_CHAT_MESSAGE} characters`);
  }
  return message;
}

/** Shown as the author of a message published from outside without one. */
export const EXTERNAL_AUTHOR = "Server";
// One normalised copy per event, shared by every member, so it is serialised once.
const normalised = new WeakMap<object, ChatMessage | null>();

/**
 * The message a `chat.message` event carries. Ours are complete; one published from outside
 * (`deno task send`, `redis-cli PUBLISH`) may be just `{"message": {"message": "hi"}}` or
 * `{"message": "hi"}`: missing id, time, room and author are filled in. Such messages are
 * live only: history is written by the process that accepted a message from a client.
 */
function chatMessageOf(event: LayerEvent, room: string): ChatMessage | null {
  const raw = event.message;
  if (typeof raw === "object" && raw !== null && isComplete(raw as Partial<ChatMessage>)) {
    return raw as ChatMessage;
  }
  if (normalised.has(event)) return normalised.get(event)!;
  const fields = (typeof raw === "string" ? { message: raw } : raw ?? {}) as Record<
    string,
    unknown
  >;
  const text = fields.message;
  const message: ChatMessage | null = typeof text !== "string" || text.length > MAX_CHAT_MESSAGE
    ? null
    : {
      type: "chat.message",
      id: typeof fields.id === "string" ? fields.id : sortableId(),
      room: typeof fields.room === "string" ? fields.room : room,
      message: text,
      author: typeof fields.author === "string" ? fields.author.slice(0, 150) : EXTERNAL_AUTHOR,
      time: typeof fields.time === "string" ? fields.time : new Date().toISOString(),
    };
  if (message === null) log.warn(`Ignored a "chat.message" event to "${room}" without a text`);
  normalised.set(event, message);
  return message;
}

function isComplete(message: Partial<ChatMessage>): boolean {
  return typeof message.message === "string" && typeof message.id === "string" &&
    typeof message.author === "string" && typeof message.time === "string" &&
    typeof message.room === "string";
}
