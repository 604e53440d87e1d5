import {
  asFrameRef,
  type Connection,
  type Consumer,
  type ConsumerHooks,
  errorFrame,
  type FrameRef,
  type GroupStreams,
  type LayerEvent,
  log,
  PRESENCE_DIFF,
  presenceGroup,
  type PresenceTracker,
  ProtocolError,
  PublishUnconfirmedError,
  refOf,
  sessionGroup,
  sortableId,
  type StreamFollower,
  StreamFollowing,
  type StreamRetention,
} from "../mod.ts";
import { presenceSnapshot } from "./presence_snapshot.ts";
import { publishFailure, refusal } from "./chat_frames.ts";
import { UnstoredMessages } from "./unstored_messages.ts";
import { isoTime } from "./message_time.ts";
import {
  ANONYMOUS_AUTHOR,
  chatFrameOf,
  type ChatMessage,
  type ChatNaming,
  chatPresenceTopic,
  isComplete,
  OWN_CHAT_NAMING,
  roomNameOf,
  roomNameProblem,
  storedFromOutside,
} from "./chat_rooms.ts";

/** The first presence frame of a room socket that asked for them. */
export const ROOM_PRESENCE_STATE = "presence.state";

/** The frame that confirms a message is stored in its room's stream (asked with `ack`). */
export const ACK = "ack";

/** How the chat consumer is set up besides its streams. */
export interface ChatConsumerOptions {
  /** What a room's stream keeps for recovery (default: the streams' own default). */
  retention?: StreamRetention;
  /** How rooms' groups are named (default: our own, `chat.<room>`; see `chatNaming`). */
  naming?: ChatNaming;
  /**
   * Slash commands handed to background workers instead of being published, by command
   * word: `{ roll: "dice" }` sends `/roll 2d6` to the named channel `dice` as a
   * {@linkcode CHAT_COMMAND} event. The worker answers the room, or the sender's channel
   * with {@linkcode CHAT_ERROR}.
   */
  commands?: Readonly<Record<string, string>>;
}

/**
 * The event a slash command goes to its worker as: `{type, command, args, room, group,
 * author, replyTo, ref?}`; `replyTo` is the sender's channel, `group` the room's.
 */
export const CHAT_COMMAND = "chat.command";
/** The event a worker answers one socket with: `{type, error, ref?}`, sent as an error frame. */
export const CHAT_ERROR = "chat.error";
/**
 * The event a worker acks a command with, once its answer is stored: `{type, ref, offset,
 * epoch}`, sent as an ack frame (the command's frame asked with `"ack": true`).
 */
export const CHAT_ACK = "chat.ack";
// The presence meta of every socket without a session: one object, not one per socket.
const NO_SESSION = Object.freeze({ session: null });
export { NOT_CONFIRMED, NOT_DELIVERED, NOT_SENT } from "./chat_frames.ts";
/** What the sender of a command (`/roll`) is told when its queueing went unanswered. */
export const COMMAND_NOT_CONFIRMED =
  "Command not confirmed: the server lost the answer from its workers' queue, so it may still run";
// `/word rest`: the command word and its arguments.
const SLASH_COMMAND = /^\/([a-z]+)(?:\s+([\s\S]*))?$/;

/**
 * The chat room of the Django Channels tutorial: a client sends `{"message": "..."}`, every
 * socket in the room (the sender's too) receives the message with its id, author, time and
 * `offset` in the room's stream. On entry, the room's last 50 messages arrive first, each
 * frame marked `"history": true`.
 *
 * Delivery you can count on (opt-in, see the README's delivery protocol): `?stream=1` asks for
 * the room's position first (`{"type": "recovered", "fresh": true, "epoch", "offset"}`);
 * `?epoch=E&since=N` replays what the client missed after offset N, marked `"recovered": true`,
 * after `{"type": "recovered", "complete": true}` — or says `"complete": false` and sends the
 * last 50 as history. A client frame's `ref` comes back on every answer to it; with
 * `"ack": true` the answer is `{"type": "ack", "ref", "offset", "epoch"}` once the message is
 * stored. The socket joins the group before it reads the stream, and sends each offset once.
 *
 * With `presence`, every socket is tracked in the room's topic while it is open (released
 * with grace, so a reload does not flicker), under its user's name or, for anonymous
 * visitors, `"Anonymous"` (they all count as that one member). Only a socket opened with
 * `?presence=1` (the site's own page) gets presence frames: `{"type": "presence.state",
 * "users": [{"username", "online"}]}` after the history, then `{"type": "presence.diff",
 * "joins", "leaves", "topic", "time"}`. The tutorial's page prints every frame's `message`,
 * so it must not get them. Presence work happens on connect and disconnect only.
 */
export function chatConsumer(
  streams: GroupStreams,
  presence?: PresenceTracker,
  options: ChatConsumerOptions = {},
): Consumer {
  const naming = options.naming ?? OWN_CHAT_NAMING;
  const route: ChatRoute = {
    streams,
    presence,
    naming,
    commands: options.commands ?? {},
    publishOptions: { retention: options.retention },
    presenceFailing: false,
    unstored: new UnstoredMessages(),
    following: new StreamFollowing(streams, {
      frameOf: roomFrameOf,
      // A room's stream holds whole chat messages, which are their own frames.
      framesKeepEvents: true,
      // A Django consumer's chat message (channels_redis) is kept in the room's stream too.
      keepForeign(event, group, foreignId) {
        const stored = storedFromOutside(naming, group, event, foreignId);
        return stored !== null && "message" in stored ? stored.message : null;
      },
      retention: options.retention,
    }),
  };
  return (conn) => new ChatSocket(route, conn);
}

// The frame of a room's event; the room is needed only for messages from outside, so it is
// looked up only for those (this runs for every delivery).
function roomFrameOf(event: LayerEvent, conn: Connection): LayerEvent | null {
  return isComplete(event) ? event : chatFrameOf(event, roomNameOf(conn.scope.params.room ?? ""));
}

// Said once per outage of the presence backend, not once per socket that connects meanwhile.
function presenceFailed(route: ChatRoute, room: string, error: unknown): false {
  if (!route.presenceFailing) {
    route.presenceFailing = true;
    log.warn(
      `Presence unavailable (room "${room}": ${(error as Error)?.message ?? error}); sockets ` +
        "are served without it until it works again",
    );
  }
  return false;
}

function presenceWorks(route: ChatRoute): true {
  if (route.presenceFailing) log.info("Presence works again");
  route.presenceFailing = false;
  return true;
}

/** What every socket of one chat route shares. */
interface ChatRoute {
  readonly streams: GroupStreams;
  readonly presence: PresenceTracker | undefined;
  readonly naming: ChatNaming;
  readonly commands: Readonly<Record<string, string>>;
  readonly publishOptions: { retention?: StreamRetention };
  /** The room's stream, as each socket follows it: recovery, then each offset once, in order. */
  readonly following: StreamFollowing;
  /** The presence backend refused a socket's tracking, and has not taken one since. */
  presenceFailing: boolean;
  /** What the log says of messages that could not be stored. */
  readonly unstored: UnstoredMessages;
}

type EventHandlers = Readonly<Record<string, (event: LayerEvent) => void | Promise<void>>>;

/**
 * One socket of a room. A class, not closures: its hooks and event handlers are shared by every
 * socket, so an idle socket keeps only these fields (thousands of idle sockets are the norm).
 */
class ChatSocket implements ConsumerHooks {
  readonly #route: ChatRoute;
  readonly #conn: Connection;
  readonly #room: string;
  readonly #group: string;
  readonly #member: string;
  readonly #follower: StreamFollower;
  /** Presence diffs wait here until the state frame went out (see presence.ts). */
  #earlyDiffs: LayerEvent[] | null = null;
  #diffsLive = false;

  constructor(route: ChatRoute, conn: Connection) {
    this.#route = route;
    this.#conn = conn;
    // A socket cannot be redirected as a page is: it joins the room its name stands for.
    this.#room = roomNameOf(conn.scope.params.room ?? "");
    this.#group = route.naming.group(this.#room);
    this.#member = conn.scope.user.username ?? ANONYMOUS_AUTHOR;
    this.#follower = route.following.follow(conn, this.#group);
  }

  // Called with the socket as `this` (see `ConsumerHooks.events`).
  static readonly #events: EventHandlers = {
    // The layer's event object is the frame: one serialisation serves every socket.
    [PRESENCE_DIFF](this: ChatSocket, event: LayerEvent) {
      if (this.#diffsLive) this.#conn.sendJson(event);
      else (this.#earlyDiffs ??= []).push(event);
    },
    "chat.message"(this: ChatSocket, event: LayerEvent) {
      return this.#follower.deliver(event);
    },
    // Channels' handler-name form, as a Django project may send it.
    chat_message(this: ChatSocket, event: LayerEvent) {
      return this.#follower.deliver(event);
    },
    [CHAT_ACK](this: ChatSocket, event: LayerEvent) {
      const { offset, epoch } = event;
      this.#conn.sendJson({ type: ACK, ref: asFrameRef(event.ref), offset, epoch });
    },
    [CHAT_ERROR](this: ChatSocket, event: LayerEvent) {
      this.#sendError(String(event.error), asFrameRef(event.ref), event.unconfirmed === true);
    },
  };

  get events(): EventHandlers {
    return ChatSocket.#events;
  }

  async connect(): Promise<boolean | void> {
    const { naming, presence } = this.#route;
    const conn = this.#conn;
    const room = this.#room;
    // Said in the handshake's log line, as a refusal for the layer is.
    const problem = roomNameProblem(room);
    if (problem !== null) throw new ProtocolError(problem);
    const refused = naming.refusal(room);
    if (refused !== null) throw new ProtocolError(refused);
    // Read here and let go: the scope parses it on each read.
    const query = conn.scope.query;
    await conn.groupAdd(this.#group);
    if (presence === undefined) return this.#follower.enter(query);
    const listing = query.get("presence") === "1";
    const topic = chatPresenceTopic(room);
    if (listing) await conn.groupAdd(presenceGroup(topic));
    const sessionId = conn.scope.sessionId;
    const session = sessionId === null ? null : await sessionGroup(sessionId);
    const meta = session === null ? NO_SESSION : { session };
    // Presence is the chat's extra: a backend that cannot take it (a full disk under Deno KV)
    // leaves the socket unlisted, not refused.
    const tracked = await presence.track(this.#member, conn.channelName, meta, topic).then(
      () => presenceWorks(this.#route),
      (error) => presenceFailed(this.#route, room, error),
    );
    try {
      await this.#follower.enter(query);
      if (!listing) return;
      const online = await presence.state(topic).then(
        (state) => state.online,
        (error) => presenceFailed(this.#route, room, error) || null,
      );
      if (online === null) {
        // No list to show: the diffs, which would only wait for it, are not taken either.
        this.#earlyDiffs = null;
        return await conn.groupDiscard(presenceGroup(topic));
      }
      conn.sendJson({
        type: ROOM_PRESENCE_STATE,
        users: presenceSnapshot([], online, this.#member),
        // Who this socket writes as: a page opened as someone else (a log-in or log-out in
        // another tab while it was away) says so, rather than posting under another name.
        you: this.#member,
      });
      for (const event of this.#earlyDiffs ?? []) conn.sendJson(event);
      this.#earlyDiffs = null;
      this.#diffsLive = true;
    } catch (error) {
      // A refused socket never runs `disconnect`: untrack here, or the member is a ghost.
      if (tracked) await presence.untrack(conn.channelName);
      throw error;
    }
  }

  receiveJson(value: unknown): void | Promise<void> {
    const ref = refOf(value);
    const refused = refusal(value);
    if (refused !== null) throw new ProtocolError(refused, undefined, { ref });
    const text = (value as { message: string }).message;
    const { commands, streams, publishOptions } = this.#route;
    const ack = (value as { ack?: unknown }).ack === true;
    if (text.charCodeAt(0) === 47) { // "/": maybe a command for a worker
      const command = SLASH_COMMAND.exec(text.trimEnd());
      if (command !== null && Object.hasOwn(commands, command[1])) {
        return this.#handOff(commands[command[1]], command, ref, ack);
      }
    }
    const now = Date.now(); // one clock reading for the id and the time
    const room = this.#room;
    const message: ChatMessage & LayerEvent = {
      type: "chat.message",
      id: sortableId(now),
      room,
      message: text,
      author: this.#member,
      time: isoTime(now),
    };
    // Not awaited: the stream keeps one sender's messages in order, so this socket's next
    // frame need not wait for the answer (and the hook costs no promise).
    streams.publish(this.#group, message, publishOptions).then(
      (published) => {
        if (this.#route.unstored.outage) this.#route.unstored.stored();
        if (ack) {
          this.#conn.sendJson({
            type: ACK,
            ref,
            offset: published.offset,
            epoch: published.epoch,
          });
        }
      },
      (error) => {
        // One that may be stored must not be taken for refused, and sent again.
        const failure = publishFailure(error);
        this.#route.unstored.failed(room, failure.how, error);
        this.#sendError(failure.text, ref, failure.unconfirmed);
      },
    );
  }

  // Messages dropped while this socket read too slowly: sent again from the stream.
  drained(): void {
    this.#follower.resume();
  }

  async disconnect(): Promise<void> {
    await this.#route.presence?.untrack(this.#conn.channelName, { grace: true }).catch((error) =>
      presenceFailed(this.#route, this.#room, error)
    );
  }

  // With `unconfirmed`, the message may be stored although no ack can come.
  #sendError(text: string, ref: FrameRef | undefined, unconfirmed = false): void {
    this.#conn.sendJson(errorFrame(text, { ref, unconfirmed: unconfirmed || undefined }));
  }

  // `/roll 2d6` goes to the dice worker, which answers the whole room (or this socket). With
  // `ack`, the worker acks once its answer is stored ({@linkcode CHAT_ACK}), with that offset.
  async #handOff(
    channel: string,
    command: RegExpExecArray,
    ref: FrameRef | undefined,
    ack: boolean,
  ): Promise<void> {
    const conn = this.#conn;
    const event: LayerEvent = {
      type: CHAT_COMMAND,
      command: command[1],
      args: (command[2] ?? "").trim(),
      room: this.#room,
      group: this.#group,
      author: this.#member,
      replyTo: conn.channelName,
      ...(ref === undefined ? {} : { ref }),
      ...(ack && { ack }),
    };
    try {
      const result = await conn.channelSend(channel, event);
      if (result.queued) {
        // channels_redis: a worker that starts within the queue's expiry still takes it.
        // "Unconfirmed", not refused: the client must not send it again (it would run twice).
        this.#sendError(
          `No ${channel} worker is running now: the command waits for one`,
          ref,
          true,
        );
      } else if (result.noListener) this.#sendError(`No ${channel} worker is running`, ref);
      else if (result.dropped > 0) {
        this.#sendError(`The ${channel} worker is busy: try again`, ref);
      }
    } catch (error) {
      if (error instanceof PublishUnconfirmedError) {
        // It may run: "not sent" would have its user send it again, to run twice.
        log.warn(`Chat command to "${channel}" not confirmed`, error);
        return this.#sendError(COMMAND_NOT_CONFIRMED, ref, true);
      }
      log.warn(`Chat command to "${channel}" not sent`, error);
      this.#sendError("Command not sent: the server cannot reach its workers right now", ref);
    }
  }
}
