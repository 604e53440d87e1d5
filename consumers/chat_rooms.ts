/**
 * A chat room's names and messages: which room names are valid, the group a room is on for
 * each layer (this project's `chat.<room>`, or Django Channels' `chat_<room>`), and the message
 * a `chat.message` event carries, ours or one sent from outside.
 */
import { type LayerEvent, log, presenceGroup, sortableId, sortableIdFrom } from "../mod.ts";

/** Longest room name, in characters. */
export const MAX_ROOM_NAME = 100;
/** Longest chat message, in characters (the frame limit is separate and larger). */
export const MAX_CHAT_MESSAGE = 10_000;
/** Longest author name of a message from outside, in characters (Django's usernames' limit). */
const MAX_OUTSIDE_AUTHOR = 150;
/** Shown as the author of anonymous users' messages. */
export const ANONYMOUS_AUTHOR = "Anonymous";

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// What shows as nothing: white space, controls, the braille blank, and Unicode's default
// ignorable characters (zero-width and bidirectional marks, the soft hyphen, variation selectors,
// the Hangul fillers), which fonts draw as nothing. Not every format character: the Arabic end of
// ayah (U+06DD) and its kin are drawn.
const SHOWS_NOTHING = /^[\s\p{Cc}\p{Default_Ignorable_Code_Point}\u2800]*$/u;

/**
 * True when `text` would show as nothing: a message or a room name of zero-width spaces or a
 * right-to-left mark alone is an empty line under its author, or a room nobody can tell apart.
 */
export function isBlank(text: string): boolean {
  return SHOWS_NOTHING.test(text);
}

/** True for a usable room name: 1 to 100 characters, no control characters, not `.` or `..`. */
export function isValidRoomName(room: string): boolean {
  return roomNameProblem(room) === null;
}

/** What makes `room` no usable room name, said for its user; `null` when it is one. */
export function roomNameProblem(room: string): string | null {
  // "." and ".." are path segments that browsers resolve away: such a room could never be opened.
  if (room === "." || room === "..") return 'A room cannot be named "." or ".."';
  if (room === "" || isLongerThan(room, MAX_ROOM_NAME)) {
    return `A room name is 1 to ${MAX_ROOM_NAME} characters`;
  }
  if (CONTROL.test(room)) return "A room name holds no control characters";
  if (room.trim() !== room) return "A room name has no spaces at either end";
  if (isBlank(room)) return "A room name must show something: it holds only invisible characters";
  // A lone surrogate is no character: a store writes it as U+FFFD, so two such rooms and the
  // room named with U+FFFD itself would share one history.
  if (!room.isWellFormed()) return "A room name must be well-formed Unicode (no lone surrogates)";
  return null;
}

/**
 * True when `text` has more than `most` characters (code points: an emoji is one, as a reader
 * counts it). Counted only near the limit: a string has no more code points than UTF-16 units,
 * and at least half as many.
 */
export function isLongerThan(text: string, most: number): boolean {
  if (text.length <= most) return false;
  if (text.length > 2 * most) return true;
  let count = 0;
  for (const _ of text) if (++count > most) return true;
  return false;
}

// `text` cut to at most `most` characters, never between the two halves of one.
function cutTo(text: string, most: number): string {
  return isLongerThan(text, most) ? [...text].slice(0, most).join("") : text;
}

/**
 * A room's one name among the ways to write it: Unicode's composed form (NFC), so that `café`
 * typed as `e` and a combining accent is the room `café`, not another that looks the same.
 */
export function roomNameOf(room: string): string {
  // Composing joins at most 4 code points into one, each at most 2 UTF-16 units: a name longer
  // than 10 units a character cannot come within the limit, and is not normalised, because
  // normalising a long run of combining marks costs time quadratic in its length.
  if (room.length > MAX_ROOM_NAME * 10) return room;
  const composed = room.normalize("NFC");
  // A few characters decompose under NFC (U+0958 "क़" is two): a name that grows past the limit
  // that way stays as it is written.
  return composed === room || isValidRoomName(composed) || !isValidRoomName(room) ? composed : room;
}

/**
 * The valid name `room` stands for when it is written otherwise: with spaces around it
 * ("lobby " is "lobby"), or not in its composed form (see {@linkcode roomNameOf}); else `null`.
 */
export function canonicalRoomName(room: string): string | null {
  if (CONTROL.test(room)) return null;
  const canonical = roomNameOf(room.trim());
  return canonical !== room && isValidRoomName(canonical) ? canonical : null;
}

/** The group of a room's sockets (this project's own naming; see {@linkcode chatNaming}). */
export function chatGroup(room: string): string {
  return `chat.${roomNameOf(room)}`;
}

/**
 * `group` as the room's sockets name it when it is a room's group written otherwise (its room in
 * decomposed Unicode, see {@linkcode roomNameOf}), else `group` itself: what is sent from outside
 * to a room's group reaches the room however its name was written.
 */
export function canonicalGroup(naming: ChatNaming, group: string): string {
  const room = naming.roomOf(group);
  return room === null ? group : naming.group(roomNameOf(room));
}

/** The room whose group `group` is, or `null` when it is no room's (own naming). */
export function roomOfGroup(group: string): string | null {
  if (!group.startsWith("chat.")) return null;
  const room = group.slice("chat.".length);
  // Judged as its sockets name it: a long name in decomposed Unicode is within the limit once
  // composed.
  return isValidRoomName(roomNameOf(room)) ? room : null;
}

/** How the chat names a room's group on the layer it runs on. */
export interface ChatNaming {
  /** The group of a room's sockets. */
  group(room: string): string;
  /** The room whose group `group` is, or `null` when it is no room's. */
  roomOf(group: string): string | null;
  /** Why a valid room name cannot be used on this layer, or `null` when it can. */
  refusal(room: string): string | null;
}

/** Our own naming: `chat.<room>`, any room name {@linkcode isValidRoomName} accepts. */
export const OWN_CHAT_NAMING: ChatNaming = {
  group: chatGroup,
  roomOf: roomOfGroup,
  refusal: () => null,
};

const CHANNELS_PREFIX = "chat_";
/**
 * The longest room Channels can name: every group a room's socket joins is a Channels group
 * name (ASCII letters, digits, `-`, `_`, `.`, shorter than 100 characters), and the longest of
 * them is its presence group, `presence.chat.<room>`, so a room has at most 85.
 */
export const MAX_CHANNELS_ROOM = 99 - presenceGroup(chatPresenceTopic("")).length;
const CHANNELS_ROOM = new RegExp(`^[a-zA-Z0-9\\-_.]{1,${MAX_CHANNELS_ROOM}}$`);

/**
 * The Channels tutorial's naming, for a layer shared with Django (`LAYER=channels_redis`):
 * `chat_<room>`, so a Django `ChatConsumer` in the room `lobby` shares `chat_lobby`. Rooms
 * Channels cannot name (Unicode, spaces, over 85 characters) are refused with the reason.
 */
export const CHANNELS_CHAT_NAMING: ChatNaming = {
  group: (room) => CHANNELS_PREFIX + room,
  roomOf(group) {
    if (!group.startsWith(CHANNELS_PREFIX)) return null;
    const room = group.slice(CHANNELS_PREFIX.length);
    return isValidRoomName(room) && CHANNELS_ROOM.test(room) ? room : null;
  },
  refusal: (room) =>
    CHANNELS_ROOM.test(room)
      ? null
      : `Room ${
        JSON.stringify(room)
      } cannot be shared with Django Channels: with LAYER=channels_redis, room names are 1 to ` +
        `${MAX_CHANNELS_ROOM} ASCII letters, digits, hyphens, underscores or periods`,
};

/** The naming for `layer`: Channels' when it is shared with Django, else our own. */
export function chatNaming(layer: { readonly channelsCompatible?: boolean }): ChatNaming {
  return layer.channelsCompatible === true ? CHANNELS_CHAT_NAMING : OWN_CHAT_NAMING;
}

/** The presence topic of a room: who is in it (the same name as its group). */
export function chatPresenceTopic(room: string): string {
  return chatGroup(room);
}

/** One chat message as it goes over the wire and into the room's stream. */
export interface ChatMessage {
  /** The event type it travels under on the group layer. */
  type: "chat.message";
  /** Sorts by time; unique per message. */
  id: string;
  /** The room's name, decoded, as in its URL. */
  room: string;
  /** The text as the author sent it; escaped only where it is shown. */
  message: string;
  /** The author's username, or a fixed name for anonymous authors. */
  author: string;
  /** ISO 8601, UTC. */
  time: string;
}

/** Shown as the author of a message published from outside without one. */
export const EXTERNAL_AUTHOR = "Server";
// One normalised copy per event, shared by every member, so it is serialised once.
const normalised = new WeakMap<object, LayerEvent | null>();

/**
 * The frame a `chat.message` event makes. Ours are complete messages with their `offset` and
 * `epoch`: the event is the frame. One published from outside may be `{"message": {"message":
 * "hi"}}` or `{"message": "hi"}` (Django Channels' tutorial): see
 * {@linkcode chatMessageFromOutside}; its offset and epoch, when it has them, are kept.
 */
export function chatFrameOf(event: LayerEvent, room: string): LayerEvent | null {
  if (isComplete(event)) return event;
  if (normalised.has(event)) return normalised.get(event)!;
  const message = chatMessageFromOutside(event, roomNameOf(room));
  const frame = message === null || typeof event.offset !== "number"
    ? message
    : { ...message, offset: event.offset, epoch: event.epoch };
  if (frame === null) {
    log.warn(`Ignored a "${event.type}" event to "${room}": ${outsideMessageProblem(event)}`);
  }
  normalised.set(event, frame);
  return frame;
}

/**
 * What an event sent from outside to `group` (`POST /_send/`, `deno task send`) puts into a
 * room's stream: `null` when it is no chat message to a room (it is sent as it is), else the
 * message to store, or why it is refused (no text, too long, or only spaces).
 */
export function storedFromOutside(
  naming: ChatNaming,
  group: string,
  event: LayerEvent,
  foreignId?: string,
): { message: ChatMessage & LayerEvent } | { refused: string } | null {
  const room = naming.roomOf(group);
  if (room === null || !isChatMessageType(event.type)) return null;
  const message = chatMessageFromOutside(event, roomNameOf(room), foreignId);
  if (message === null) return { refused: `Not a chat message: ${outsideMessageProblem(event)}` };
  return { message };
}

// A message from outside that several processes got a copy of (a Django group_send) has one id
// and time in all of them, made from its identity (`GroupStreams.foreignIdOf`): its send's time
// in seconds (channels_redis' score, the sender's clock), then a hash of what it sent.
function idOfForeign(foreignId: string): string {
  return sortableIdFrom(sentAt(foreignId), foreignId);
}

function sentAt(foreignId: string): number {
  const ms = Math.floor(Number.parseFloat(foreignId) * 1000);
  return Number.isFinite(ms) && ms >= 0 ? ms : 0;
}

/** A chat message's event type: ours, or Channels' handler-name form a Django project sends. */
function isChatMessageType(type: unknown): boolean {
  return type === "chat.message" || type === "chat_message";
}

/** Why {@linkcode chatMessageFromOutside} found no chat message in `event`. */
function outsideMessageProblem(event: LayerEvent): string {
  const text = textOf(event.message);
  if (typeof text !== "string") return 'it has no "message" text';
  if (!text.isWellFormed()) return "its text is not well-formed Unicode: it holds a lone surrogate";
  if (isBlank(text)) return "its text is empty";
  return `its text is ${[...text].length} characters, over the limit of ${MAX_CHAT_MESSAGE}`;
}

/** Why a message with a lone surrogate (no character: `"\ud800"` in JSON) is refused. */
export const NOT_WELL_FORMED = "Message must be well-formed Unicode: it holds a lone surrogate";

// The text of an event's `message`: the string itself, or the `message` of an object.
function textOf(raw: unknown): unknown {
  return typeof raw === "string" ? raw : (raw as { message?: unknown } | null)?.message;
}

/**
 * The chat message an event from outside stands for (`POST /_send/`, `deno task send`,
 * `redis-cli PUBLISH`): `{"message": {"message": "hi", "author": "ci"}}` or `{"message": "hi"}`,
 * with a missing id, time, room and author filled in; `null` when it carries no text of at
 * most 10,000 characters of well-formed Unicode, or only spaces. Sends from outside go into the room's stream as this message.
 */
export function chatMessageFromOutside(
  event: LayerEvent,
  room: string,
  foreignId?: string,
): (ChatMessage & LayerEvent) | null {
  const raw = event.message;
  // `{"message": "hi", "author": …}` (the event's own fields, as the README shows it), or the
  // fields inside `{"message": {"message": "hi", "author": …}}`.
  const fields = (typeof raw === "string" ? event : raw ?? {}) as Record<string, unknown>;
  const text = textOf(raw);
  if (typeof text !== "string" || isLongerThan(text, MAX_CHAT_MESSAGE)) return null;
  // As a socket's empty message is refused: a deploy script's unset "$MSG", a Django page's
  // empty input, stores nothing and shows nothing.
  if (!text.isWellFormed() || isBlank(text)) return null;
  return {
    type: "chat.message",
    id: typeof fields.id === "string"
      ? fields.id
      : foreignId === undefined
      ? sortableId()
      : idOfForeign(foreignId),
    room: typeof fields.room === "string" ? fields.room : room,
    message: text,
    author: typeof fields.author === "string"
      ? cutTo(fields.author, MAX_OUTSIDE_AUTHOR).toWellFormed()
      : EXTERNAL_AUTHOR,
    time: typeof fields.time === "string"
      ? fields.time
      : new Date(foreignId === undefined ? Date.now() : sentAt(foreignId)).toISOString(),
  };
}

/**
 * True for a chat message as this server publishes it: the event is its own frame. One typed
 * `chat_message` (Channels' handler-name form) is not: its frame says `chat.message`.
 */
export function isComplete(event: LayerEvent): boolean {
  return event.type === "chat.message" && typeof event.message === "string" &&
    typeof event.id === "string" &&
    typeof event.author === "string" && typeof event.time === "string" &&
    typeof event.room === "string";
}
