/**
 * WebSocket close codes, in one place. 1000-1015 are RFC 6455's; 4000-4999 are the
 * application's own.
 */
export const CloseCode = {
  /** The conversation is over. */
  NORMAL: 1000,
  /** The server is shutting down (or the page is navigating away). */
  GOING_AWAY: 1001,
  /** The server cannot accept this kind of data (a binary frame to a text protocol). */
  UNSUPPORTED_DATA: 1003,
  /** The data was not what the protocol says (bad JSON, a missing field). */
  INVALID_PAYLOAD: 1007,
  /** The client broke a rule (a flood, a forbidden action). */
  POLICY_VIOLATION: 1008,
  /** A message was larger than the limit. */
  MESSAGE_TOO_BIG: 1009,
  /** The server failed while handling this connection. */
  INTERNAL_ERROR: 1011,
  /** The server is restarting (a drain on deploy): reconnect, to another process if there is one. */
  SERVICE_RESTART: 1012,
  /** The server is overloaded for this connection (it could not keep up): retry later. */
  TRY_AGAIN_LATER: 1013,
  /**
   * The connection was lost without a close frame (a network drop, a killed client): reported,
   * as browsers and Channels report it, never sent.
   */
  ABNORMAL_CLOSURE: 1006,
  /**
   * Log in again: the user logged out in another tab, or the session or access token the socket
   * was opened with expired or was revoked.
   */
  LOGGED_OUT: 4001,
  /**
   * Reconnect: the browser's session took a new id and the same user is still signed in (a
   * password change on its page, a log-in again as the same user), or the browser signed in
   * after the socket opened anonymously ("Logged in"). Its sockets were opened with the old
   * cookie; the one the browser has now names the session.
   */
  SESSION_RENEWED: 4002,
} as const;

/** The name of a close code for logs, e.g. `1009 (MESSAGE_TOO_BIG)`. */
export function describeCloseCode(code: number): string {
  const name = Object.entries(CloseCode).find(([, value]) => value === code)?.[0];
  return name ? `${code} (${name})` : String(code);
}

/**
 * A close code a client sent, for logs: named only when RFC 6455 gives it its meaning (`1009
 * (MESSAGE_TOO_BIG)`). 3000-4999 are each application's own, so a client's 4001 is its app's,
 * not this server's `LOGGED_OUT`: written as the bare number.
 */
export function describeClientCloseCode(code: number): string {
  return code >= 3000 ? String(code) : describeCloseCode(code);
}

/**
 * Whether `code` may be sent in a close frame (RFC 6455, section 7.4): 1000 to 1003, 1007 to
 * 1014, or 3000 to 4999. 1004 to 1006 and 1015 are reserved for what a peer reports, never sent.
 */
export function isSendableCloseCode(code: number): boolean {
  return Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999));
}

/** The most UTF-8 bytes a close frame's reason may have: 125 bytes of payload less the code. */
export const MAX_CLOSE_REASON_BYTES = 123;
const utf8 = new TextEncoder();

/**
 * `reason` cut to {@linkcode MAX_CLOSE_REASON_BYTES} bytes of UTF-8 on a character boundary:
 * a close frame may carry no more, and a longer one makes Deno's `close` throw.
 */
export function closeReason(reason: string): string {
  // At most 3 bytes per UTF-16 unit: a reason this short fits whatever its characters.
  if (reason.length <= MAX_CLOSE_REASON_BYTES / 3) return reason;
  const bytes = utf8.encode(reason);
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return reason;
  let end = MAX_CLOSE_REASON_BYTES;
  while ((bytes[end] & 0xc0) === 0x80) end--; // not inside a character's bytes
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/**
 * A client's mistake, thrown from a consumer hook: the client gets
 * `{"type": "error", "error": message, "message": message}` (see {@linkcode errorFrame}), and
 * the socket is closed when `code` is given.
 */
export class ProtocolError extends Error {
  /** The close code when the error ends the connection; `undefined` keeps it open. */
  readonly code: number | undefined;
  /** The `ref` of the client frame this answers, echoed in the error frame. */
  readonly ref: FrameRef | undefined;
  /** `message` is what the client is told; a `code` also closes its socket. */
  constructor(message: string, code?: number, options: { ref?: FrameRef } = {}) {
    if (code !== undefined && typeof code !== "number") {
      throw new TypeError(
        `ProtocolError(message, code): the close code is a number (or nothing, to keep the ` +
          `socket open), not ${Deno.inspect(code)}; a ref goes in the third argument, { ref }`,
      );
    }
    if (code !== undefined && !isSendableCloseCode(code)) {
      throw new RangeError(
        `Close code ${code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999`,
      );
    }
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.ref = options.ref;
  }
}

/** What a client may tag a frame with so that every answer to it names it: see `frameRef`. */
export type FrameRef = string | number;

/**
 * The `ref` of a client's JSON text frame: a string of 1 to 64 characters or a safe integer;
 * `undefined` for anything else. Read only when the framework itself refuses a frame (a rate
 * limit, a full queue), so a client learns which of its messages was refused.
 */
export function frameRef(text: string): FrameRef | undefined {
  try {
    return asFrameRef(JSON.parse(text)?.ref);
  } catch {
    return undefined; // not JSON: no ref
  }
}

/** The longest string `ref`, in characters. */
export const MAX_FRAME_REF_LENGTH = 64;

/**
 * `value` when it is a valid `ref` (a string of 1 to 64 characters, counted as code points as
 * a message's are, and well-formed Unicode as a message must be; or a safe integer).
 */
export function asFrameRef(value: unknown): FrameRef | undefined {
  if (typeof value === "string" && value.length >= 1 && refFits(value) && value.isWellFormed()) {
    return value;
  }
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  return undefined;
}

/**
 * The `ref` of a frame a consumer parsed (`receiveJson`'s value): its `ref` field when that is a
 * valid one (see {@linkcode asFrameRef}), else `undefined`. Put it on every answer to the frame
 * (`new ProtocolError(text, undefined, { ref })`, an ack) so the client knows which send it
 * answers.
 */
export function refOf(value: unknown): FrameRef | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return asFrameRef((value as { ref?: unknown }).ref);
}

// Code points are counted only when UTF-16 units say it might matter: an emoji is two units.
function refFits(ref: string): boolean {
  if (ref.length <= MAX_FRAME_REF_LENGTH) return true;
  return ref.length <= 2 * MAX_FRAME_REF_LENGTH && [...ref].length <= MAX_FRAME_REF_LENGTH;
}

/**
 * The frame a client is told of an error with: `{"type": "error", "error": text, "message":
 * text}` and `fields` (a `ref`, say). `message` repeats the text for clients written for the
 * Channels tutorial, which print every frame's `message`: they show the reason, not
 * "undefined".
 */
export function errorFrame(
  text: string,
  fields?: { ref?: FrameRef; [field: string]: unknown },
): Record<string, unknown> {
  const frame: Record<string, unknown> = { type: "error", error: text, message: text };
  if (fields === undefined) return frame;
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) frame[name] = value;
  return frame;
}
