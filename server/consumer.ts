/**
 * The consumer contract: what a WebSocket route's code looks like.
 *
 * A consumer is a function that receives its {@linkcode Connection} and returns its hooks.
 * State that belongs to one socket lives in the closure (or, where thousands of idle sockets
 * make memory count, in an instance of a class whose methods are the hooks: every hook runs
 * with the hooks object as `this`; see `events`). Events from the group layer reach only the
 * handlers named in `events`: there is no dispatch by reflection.
 *
 * Lifecycle (Django Channels' meaning):
 * 1. `connect` runs before the handshake is answered. Returning `false` refuses the socket
 *    with HTTP 403, as Channels' close-before-accept does; throwing a {@linkcode ProtocolError}
 *    refuses it with 403 and the error's message as the reason (in the response and the
 *    `REJECT` log line). Frames sent here are queued until the socket opens.
 * 2. `receive` / `receiveJson` / `receiveBytes` run once per frame, in order.
 * 3. `events[type]` runs for each group or channel event of that type, in order.
 * 4. When the socket closes, the framework leaves every group the consumer joined, then runs
 *    `disconnect(code)`.
 *
 * A hook that throws {@linkcode ProtocolError} sends the client `{"type":"error","error":…}`,
 * the same text also as `message`, and closes the socket if the error names a close code; any
 * other exception is logged and closes only that socket with 1011.
 *
 * @example
 * ```ts
 * export const shoutConsumer: Consumer = (conn) => ({
 *   async connect() {
 *     await conn.groupAdd("shouts");
 *   },
 *   async receiveJson(value) {
 *     await conn.groupSend("shouts", { type: "shout", text: String(value) });
 *   },
 *   events: {
 *     shout: (event) => conn.sendJson({ text: event.text }),
 *   },
 * });
 * ```
 */
import type { LayerEvent, SendResult } from "../layers/layer.ts";
import type { User } from "../auth/identify.ts";
export { ProtocolError } from "./close_codes.ts";

/** What the consumer knows about the request that opened the socket. */
export interface Scope {
  /** The request path, still percent-encoded, e.g. `/ws/chat/caf%C3%A9/`. */
  readonly path: string;
  /** Decoded path parameters, e.g. `{ room: "café" }`. */
  readonly params: Readonly<Record<string, string>>;
  /** The handshake URL's query parameters (parsed on each read: keep it if you read it often). */
  readonly query: URLSearchParams;
  /**
   * The handshake request's headers, e.g. `Origin` or `User-Agent`: all of them in `connect`,
   * and after it those in `KEPT_HANDSHAKE_HEADERS` (a new `Headers` on each read).
   */
  readonly headers: Headers;
  /** The handshake request's cookies, by name. */
  readonly cookies: Readonly<Record<string, string>>;
  /** The client's address as `host:port` (from `X-Forwarded-For` only when trusted). */
  readonly client: string;
  /**
   * The connection's own address as `host:port`: behind a trusted proxy, the proxy's end of
   * this socket's connection; `-` for a request an app was handed without one (`app.handle`
   * without its `info`).
   */
  readonly peer?: string;
  /** Who opened the socket, as their session said at the handshake. */
  readonly user: User;
  /** The session id behind `user`, when there is one. */
  readonly sessionId: string | null;
  /**
   * The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order: Channels'
   * `scope["subprotocols"]`. Pick one with {@linkcode Connection.acceptSubprotocol}.
   */
  readonly subprotocols: readonly string[];
}

/** One socket, as its consumer sees it. */
export interface Connection {
  /** What the request that opened the socket said: path, user, headers. */
  readonly scope: Scope;
  /** This connection's channel on the group layer. */
  readonly channelName: string;
  /** True once the socket is closing or closed: what is sent from then on is dropped. */
  readonly closed: boolean;
  /** Sends a text or binary frame (queued until open, dropped once closed). */
  send(data: string | Uint8Array): void;
  /** Sends a value as a JSON text frame. */
  sendJson(value: unknown): void;
  /**
   * Bytes this socket can still hold unsent: before it opens, what `connect` may still send
   * (four times `maxBufferedBytes`); after, `maxBufferedBytes` less what the client has not
   * read yet. A consumer about to send much at once (a replay) checks it first: frames beyond
   * it are dropped before the socket opens, and once it is open a client that far behind is
   * closed with 1013. While a socket keeps up, the bound is checked on every 8th frame (Deno's
   * count of unsent bytes is a call into the runtime), so it may pass it by up to 7 frames.
   */
  readonly sendCapacity: number;
  /**
   * The most this socket holds unsent once open (`maxBufferedBytes`, `MAX_BUFFERED_BYTES`): its
   * `sendCapacity` when nothing waits. A frame larger than that is sent once nothing waits.
   */
  readonly sendBound: number;
  /** Sends `{"type": "error", "error": message, "message": message}` (see `errorFrame`). */
  sendError(message: string): void;
  /**
   * Closes the socket with `code` (default 1000) and `reason`, cut to the 123 bytes of UTF-8 a
   * close frame carries. A code no close frame may carry (see `isSendableCloseCode`) throws a
   * `RangeError`.
   */
  close(code?: number, reason?: string): void;
  /** Joins a group; the framework leaves it when the socket closes. */
  groupAdd(group: string): Promise<void>;
  /** Leaves a group. */
  groupDiscard(group: string): Promise<void>;
  /** Sends an event to every member of a group. */
  groupSend(group: string, event: LayerEvent): Promise<SendResult>;
  /**
   * In `connect`: answers the handshake with `name`, one of `scope.subprotocols`, as Channels'
   * `accept(subprotocol=name)`. Without it the 101 names none (a strict client then gives up).
   * A name the client did not offer, or a call once the handshake is answered, throws.
   */
  acceptSubprotocol(name: string): void;
  /**
   * Sends an event to one channel: a named channel (a background worker's queue, e.g.
   * `"dice"`, where one of its listeners takes it) or another connection's `channelName`.
   * Channels' `channel_layer.send`. Nobody listening is never silent: the result then says
   * `noListener: true` (and `delivered: 0`).
   */
  channelSend(channel: string, event: LayerEvent): Promise<SendResult>;
}

/** The hooks of one connection's consumer. All are optional. */
export interface ConsumerHooks {
  /** Runs before the handshake is answered; `false` refuses it with 403. */
  connect?(): boolean | void | Promise<boolean | void>;
  /** Runs for each text frame (unless `receiveJson` is given). */
  receive?(text: string): void | Promise<void>;
  /** Runs for each text frame parsed as JSON; a frame that is not JSON gets an error frame. */
  receiveJson?(value: unknown): void | Promise<void>;
  /** Runs for each binary frame; without it a binary frame closes the socket with 1003. */
  receiveBytes?(data: Uint8Array): void | Promise<void>;
  /**
   * Handlers for layer events, by their `type`: the object's own properties only (an event
   * typed `toString` reaches nothing; an inherited handler is logged as not handled). A type
   * with no handler of its own name reaches the one whose name is the same once dots are read
   * as underscores, as both reach one method in Channels: `"chat.message"` and `"chat_message"`
   * events go to one handler under either key (one under each key takes its own). Each runs
   * with the hooks object as `this`, so hooks made by a class may share one plain `events`
   * object among all its sockets instead of holding closures per socket.
   */
  events?: Readonly<Record<string, (event: LayerEvent) => void | Promise<void>>>;
  /**
   * Runs once the socket has taken in most of what waited for it, after group events to it were
   * dropped because it read too slowly (and it was not closed for that), and when the layer may
   * have lost events to it (its Redis subscription was lost and is back): a consumer that can
   * send them again does it here; a {@linkcode StreamFollower}'s `resume()` does. In turn with
   * the other hooks.
   */
  drained?(): void | Promise<void>;
  /** Runs after the socket closed and its groups were left. */
  disconnect?(code: number): void | Promise<void>;
}

/** A consumer: builds one connection's hooks. */
export type Consumer = (conn: Connection) => ConsumerHooks;
