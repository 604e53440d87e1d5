/**
 * The types of the package's client (`@channels/deno/client`), whose code is plain JavaScript
 * so that browsers load it as it is. `tests/client/declared_types_test.ts` holds these
 * declarations against the JavaScript: `deno check` fails when they drift apart.
 *
 * @example
 * ```ts
 * import { connectStream, SendError } from "@channels/deno/client";
 *
 * const opened = Promise.withResolvers<void>();
 * const stream = connectStream("ws://127.0.0.1:8000/ws/chat/lobby/", {
 *   onMessage: (message) => console.log(message.offset, message.message),
 *   onRecovered: ({ complete }) => complete || console.warn("some messages were lost"),
 *   onStateChange: (state) => state === "open" && opened.resolve(),
 * });
 * await opened.promise; // a send before the socket opens rejects ("not-connected")
 * try {
 *   await stream.send({ message: "hi" }, { ack: true });
 * } catch (error) {
 *   if (error instanceof SendError && error.maybeStored) console.warn("may have been stored");
 * }
 * ```
 *
 * @module
 */

/** The state of a reconnecting connection. */
export type LiveState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * What a client decides when its connection is lost. `stop`: do not reconnect, and show this
 * text as "closed"; `atLeastAttempts`: skip the short delays (see {@linkcode Backoff.atLeast}).
 */
export interface CloseVerdict {
  /** Stay closed, showing this text. */
  stop?: string;
  /** Wait at least as long as after this many failed attempts. */
  atLeastAttempts?: number;
}

/**
 * How a connection ended: the socket's `CloseEvent`, or, when the heartbeat gave it up (no
 * answer, open or opening), `{code: 1006, reason: "No answer from the server", wasClean: false}`.
 */
export interface LiveClose {
  /** The close code: the server's, or 1006 when the connection ended without one. */
  readonly code: number;
  /** The close reason, "" when none was given. */
  readonly reason: string;
  /** Whether the closing handshake completed (false when the heartbeat gave it up). */
  readonly wasClean: boolean;
}

/** What the connection label says in each state unless a client says otherwise. */
export declare const STATE_TEXT: Readonly<Record<LiveState, string>>;

/** How many messages a stream server sends as history on a fresh or incomplete connect. */
export declare const HISTORY_SIZE: number;

/**
 * A message of a stream, as the server sent it, with its `offset`; `history: true` marks the
 * last messages sent on a fresh or incomplete connect, `recovered: true` a replayed one.
 */
export type StreamMessage = Record<string, unknown> & { offset: number };

/** What the first frame of each connection of a stream says. */
export interface Recovery {
  /**
   * False when messages between the last one delivered and now are lost for this client; the
   * server then sends its last messages as history.
   */
  complete: boolean;
  /** True on a connection that did not ask to recover (the first one). */
  fresh: boolean;
  /** The stream's epoch; it changes when the stream's history is lost. */
  epoch: string;
  /** The stream's latest offset when the client connected. */
  offset: number;
  /** Why recovery was not complete, for logs. */
  reason?: string;
}

/** What a sent frame got. */
export interface SendResult {
  /** The `ref` the client put on the frame. */
  ref: string;
  /** With `ack`: the stored message's offset. */
  offset?: number;
  /** With `ack`: the stream's epoch. */
  epoch?: string;
}

/** How a stream connects and what it tells the app. */
export interface StreamOptions {
  /** Each stream message, once, in offset order. */
  onMessage?: (message: StreamMessage) => void;
  /**
   * The first frame of each connection, before the messages it announces; again, with
   * `complete: false`, when the stream's history is lost while the connection is open.
   */
  onRecovered?: (recovery: Recovery) => void;
  /** Every other frame: those without an offset (presence, errors that answer no send). */
  onFrame?: (frame: Record<string, unknown>) => void;
  /** Each change of the connection's state, with a text to show. */
  onStateChange?: (state: LiveState, text: string) => void;
  /**
   * Called when the connection is lost; return `{ stop: "why" }` to stay closed, or
   * `{ atLeastAttempts: n }` to wait longer before the next attempt.
   */
  onClose?: (event: LiveClose) => CloseVerdict | undefined | void;
  /** Accept several frames per WebSocket message (`?batch=1`, newline-delimited JSON). */
  batch?: boolean;
  /** How many messages the server sends as history (50). */
  historySize?: number;
  /**
   * How long a send with `ack` waits for the server's answer before it rejects with kind
   * "no-answer" (default 10 000 ms): a consumer that answers no ack must not leave it waiting
   * for as long as the socket stays open. `Infinity`: for as long as the connection lasts; a
   * value not above 0, or over 2^31 - 1, throws a `TypeError`. When nothing at all came from the
   * server since the send, the heartbeat pings first (up to its `timeoutMs` more): a connection
   * that answers nothing is lost, and the send rejects with "disconnected".
   */
  ackTimeoutMs?: number;
  /** Overrides of {@linkcode STATE_TEXT}. */
  texts?: Partial<Record<LiveState, string>>;
  /**
   * Delays between attempts (default 0.5 s doubling to 10 s, with jitter): a {@linkcode Backoff},
   * or its options; anything else throws a `TypeError`.
   */
  backoff?: ReconnectDelays | BackoffOptions;
  /** The socket class (a fake one in tests). */
  WebSocket?: typeof WebSocket;
  /** Where `pagehide`, `pageshow` and `online` come from. */
  window?: EventTarget;
  /**
   * How an address whose attempts keep failing before they open is asked about (default: the
   * global `fetch`; `false`: never). A browser's WebSocket does not say why an attempt failed,
   * so after two in a row the same address is fetched over HTTP: a 404 (no route there), a
   * redirect (which a WebSocket does not follow: a trailing slash missing?) or the server's 403
   * refusing the handshake (an expired token, a login required, a room its consumer refused:
   * its `Channels-Refused` header) stops the attempts, and the state becomes "closed" with a
   * text that says which (the server's reason for a refusal). With a URL function, a refusal
   * stops them only when the function gives the same address again. Any other answer, or none,
   * changes nothing.
   */
  probe?: typeof fetch | false;
  /**
   * Tell a connection that died without a close from a quiet one: after `idleMs` without a
   * frame a ping goes out (the server answers it itself), and after `timeoutMs` more without
   * any frame the connection counts as lost and is made again. An attempt that has not opened
   * after `idleMs + timeoutMs` is given up and made again the same way. `false` turns it off.
   */
  heartbeat?: Heartbeat | false;
}

/**
 * The heartbeat's timing (see `heartbeat` in the options): both above 0, else the constructor
 * throws a `TypeError`.
 */
export interface Heartbeat {
  /** Quiet this long, a ping goes out. */
  idleMs: number;
  /** No frame this long after the ping, the connection is lost. */
  timeoutMs: number;
}

/** Why a send failed: the server refused it, or the connection went before its answer. */
export declare class SendError extends Error {
  /**
   * A failed send.
   * @param message The server's error text, or what happened to the connection.
   * @param details The frame's `ref`, what happened, and the server's error frame.
   */
  constructor(
    message: string,
    details: {
      ref?: string;
      kind: "refused" | "unconfirmed" | "no-answer" | "disconnected" | "not-connected" | "closed";
      frame?: Record<string, unknown>;
    },
  );
  /** The frame's `ref` (none when it never went out). */
  ref: string | undefined;
  /**
   * "refused": the server answered with an error, or closed the socket for the frame's size
   * (1009); "unconfirmed": the server answered that it lost its storage's answer, so the
   * message may be stored; "no-answer": no answer came in `ackTimeoutMs`, so it may be stored
   * too; "disconnected": the connection
   * was lost before the answer; "not-connected": the frame never went out; "closed":
   * `close()` was called before the answer.
   */
  kind: "refused" | "unconfirmed" | "no-answer" | "disconnected" | "not-connected" | "closed";
  /** The server's error frame, when it answered. */
  frame: Record<string, unknown> | undefined;
  /**
   * True when the server may have stored the message although no ack came: the connection was
   * lost after the frame went out, the server could not confirm it, or gave no answer in time.
   * A recovered stream then shows it if it was stored.
   */
  get maybeStored(): boolean;
}

/**
 * Connects to a stream socket and keeps it connected, recovering on every reconnect. `url` may
 * be relative to the page (`/ws/chat/lobby/`) or `ws(s)://…`; its own query parameters are
 * kept.
 */
export declare function connectStream(url: string | URL, options?: StreamOptions): ChannelStream;

/** A recovering connection to one stream; {@linkcode connectStream} makes and connects one. */
export declare class ChannelStream {
  /** A stream not yet connected: call `connect()`, or use {@linkcode connectStream}. */
  constructor(url: string | URL, options?: StreamOptions);
  /** Opens the connection (once); `connectStream` calls it. */
  connect(): void;
  /** The connection's state. */
  get state(): LiveState;
  /** Whether a frame sent now goes out. */
  get isOpen(): boolean;
  /** The stream's epoch, once the server said it. */
  get epoch(): string | null;
  /** The offset of the last message delivered to `onMessage` in this epoch (0: none). */
  get offset(): number;
  /**
   * Sends one JSON frame with a fresh `ref`. Without `ack` it resolves as soon as the frame
   * went out; with `ack` it resolves with the stored message's offset and epoch, and rejects
   * with a {@linkcode SendError} carrying the server's error text. Sends are not queued and
   * never retried.
   */
  send(data: Record<string, unknown>, options?: { ack?: boolean }): Promise<SendResult>;
  /** Closes the connection for good; unanswered sends are rejected. */
  close(code?: number, reason?: string): void;
}

/**
 * The frames of one batched WebSocket message: newline-delimited JSON objects, in order. Lines
 * that are not JSON objects are skipped.
 */
export declare function ndjsonFrames(data: unknown): Record<string, unknown>[];

/** How a {@linkcode LiveSocket} behaves and what it tells the app. */
export interface LiveSocketOptions {
  /** Called on every state change. */
  onState?: (state: LiveState, text: string) => void;
  /** Called once a connection is open, after `onState("open")`. */
  onOpen?: () => void;
  /** Called with each frame that is a JSON object; any other frame is ignored. */
  onFrame?: (frame: Record<string, unknown>) => void;
  /** Turns one WebSocket message into the frames it carries (default: one JSON object). */
  decode?: (data: unknown) => Record<string, unknown>[];
  /** Called when a connection is lost while the page stays; its verdict decides what's next. */
  onClose?: (event: LiveClose) => CloseVerdict | undefined | void;
  /** Overrides of {@linkcode STATE_TEXT}. */
  texts?: Partial<Record<LiveState, string>>;
  /**
   * The delays between attempts (default 0.5 s doubling to 10 s, with jitter): a
   * {@linkcode Backoff}, or its options; anything else throws a `TypeError`.
   */
  backoff?: ReconnectDelays | BackoffOptions;
  /** The socket class (a fake one in tests). */
  WebSocket?: typeof WebSocket;
  /** Where `pagehide`, `pageshow` and `online` come from. */
  window?: EventTarget;
  /**
   * How an address whose attempts keep failing before they open is asked about (default: the
   * global `fetch`; `false`: never). A browser's WebSocket does not say why an attempt failed,
   * so after two in a row the same address is fetched over HTTP: a 404 (no route there), a
   * redirect (which a WebSocket does not follow: a trailing slash missing?) or the server's 403
   * refusing the handshake (an expired token, a login required, a room its consumer refused:
   * its `Channels-Refused` header) stops the attempts, and the state becomes "closed" with a
   * text that says which (the server's reason for a refusal). With a URL function, a refusal
   * stops them only when the function gives the same address again. Any other answer, or none,
   * changes nothing.
   */
  probe?: typeof fetch | false;
  /**
   * Tell a connection that died without a close from a quiet one: after `idleMs` without a
   * frame a ping goes out (the server answers it itself), and after `timeoutMs` more without
   * any frame the connection counts as lost and is made again. An attempt that has not opened
   * after `idleMs + timeoutMs` is given up and made again the same way. `false` turns it off.
   */
  heartbeat?: Heartbeat | false;
}

/**
 * A WebSocket that reconnects by itself, for sockets that are not streams (a presence list): it
 * reports its state, waits 0.5 s doubling to 10 s with jitter between attempts, and stops while
 * the page is being left. `url` may be a function, asked again before every attempt.
 */
export declare class LiveSocket {
  /** A socket not yet open: call `start()`. */
  constructor(url: string | (() => string), options?: LiveSocketOptions);
  /** Whether a frame sent now goes out. */
  get isOpen(): boolean;
  /**
   * Why the server refuses the handshake, in its one word (`login_required`, `token`, `origin`,
   * `name_conflict`, `consumer`), once that stopped the attempts (found by `askAboutAddress`
   * after two attempts failed); otherwise `null`, a close the server sent included (a 4001
   * log-out is seen in `onClose`). Set before the state becomes "closed".
   */
  get refused(): string | null;
  /**
   * Connects, and follows the page: no reconnecting while it is left, back when it returns.
   * Once: after a stop (`stop()`, an `onClose` verdict, a refusal) it does nothing, and a page
   * that tries again makes a new `LiveSocket`.
   */
  start(): void;
  /**
   * Whether any frame came from the server at or after `time` (a `performance.now()` reading)
   * on the open socket: a sign the connection was alive then.
   */
  heardSince(time: number): boolean;
  /**
   * Asks the server for a sign of life now: a heartbeat ping, unless one already waits for its
   * answer. A connection that answers nothing within the heartbeat's `timeoutMs` is then given
   * up as lost; one that answers calls `onAnswer` at its next frame. Returns the ms until the
   * verdict on silence, or -1 with no open socket or no heartbeat.
   */
  probe(onAnswer?: () => void): number;
  /** Sends one frame on the open socket (check `isOpen` first). */
  send(data: string): void;
  /** Closes the connection for good: no more attempts; the state becomes "closed". */
  stop(code?: number, reason?: string): void;
}

/** The frame one WebSocket message carries when it is a JSON object; none otherwise. */
export declare function jsonObjects(data: unknown): Record<string, unknown>[];

/** What a reconnecting socket asks of its backoff; a {@linkcode Backoff} is one. */
export interface ReconnectDelays {
  /** How many delays were handed out since the last reset. */
  readonly attempts: number;
  /** The delay before the next attempt, in milliseconds. */
  next(): number;
  /** Starts again from the shortest delay. */
  reset(): void;
  /** Skips the delays of the first `attempts`. */
  atLeast(attempts: number): void;
}

/** A {@linkcode Backoff}'s options: 0 < `initialMs` ≤ `maxMs` ≤ 2^31 − 1 ms. */
export interface BackoffOptions {
  /** The first delay's ceiling (500 ms). */
  initialMs?: number;
  /** The longest delay (10,000 ms). */
  maxMs?: number;
  /** Draws the jitter (`Math.random`). */
  random?: () => number;
}

/**
 * Exponential backoff with jitter for reconnecting: 0.5 s, 1 s, 2 s … up to 10 s, each delay
 * drawn from the upper half of its step so that many clients do not return all at once.
 */
export declare class Backoff {
  /** A backoff from `initialMs` doubling up to `maxMs`; `random` draws the jitter. */
  constructor(options?: BackoffOptions);
  /** How many delays were handed out since the last reset. */
  get attempts(): number;
  /** The delay before the next attempt, in milliseconds. */
  next(): number;
  /** Starts again from the shortest delay (after a connection that lasted). */
  reset(): void;
  /** Skips the short delays, e.g. after the server closed for a policy violation. */
  atLeast(attempts: number): void;
}

/** Why a WebSocket address is refused, as a plain `GET` of it found (see `askAboutAddress`). */
export interface AddressRefusal {
  /** What to show: which answer, for which path; for a refused handshake, the server's reason. */
  text: string;
  /** The server that gave it (`https://example.com`). */
  origin: string;
  /**
   * For a refused handshake, why in one word, as the server's `Channels-Refused` header gives
   * it: `token`, `login_required`, `name_conflict`, `origin` or `consumer`. Absent for a 404 or
   * a redirect.
   */
  refused?: string;
}

/**
 * Asks whether a handshake at `url` (ws, wss, http or https; relative to the page) would be
 * refused, with a plain `GET` through `probe` (`fetch`), no handshake: a page that stopped on a
 * refusal (a log-out) asks before it tries again. Resolves whether the server answered, and the
 * refusal: a 404, a redirect, or this server's 403 with its reason; `null` for any other answer
 * (a WebSocket route's own 426: no refusal that stands, though a cap may still refuse for now),
 * and for none. It has no time limit of its own: abort `signal` after one (the presence page
 * gives it 10 s).
 */
export declare function askAboutAddress(
  probe: typeof fetch,
  url: string,
  signal: AbortSignal,
): Promise<{ answered: boolean; refusal: AddressRefusal | null }>;
