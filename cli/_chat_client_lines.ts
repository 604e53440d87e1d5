/**
 * What the terminal client (`chat_client.ts`) prints: the room's frames, with what other users
 * wrote made harmless to a terminal, and one line for each thing that went wrong.
 */
import { STATUS_TEXT, type StatusCode } from "@std/http/status";
import type { SendError } from "../client/mod.js";
import { shownUrl } from "./_shown_url.ts";

/**
 * The largest frame the client sends: the server's default `MAX_MESSAGE_BYTES`, or the
 * variable's value when it is set here too. A line over it is refused here: the server would
 * close the connection for it, and the lines sent just after it would be lost.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * One line of output for a frame from the server. What other users wrote is printed with its
 * control characters and bidirectional controls escaped (`\n`, `\x1b`, `\u202e`): raw, a message
 * could clear the screen, set the terminal's title, start a line that looks like another
 * author's, or show its text reordered.
 */
export function formatFrame(frame: Record<string, unknown>): string {
  if (frame.type === "error") return `! ${printable(String(frame.error))}`;
  const time = typeof frame.time === "string" ? new Date(frame.time) : new Date();
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}`;
  const author = typeof frame.author === "string" ? frame.author : "?";
  return `[${clock}] ${printable(author)}: ${printable(String(frame.message))}`;
}

// Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and the
// bidirectional controls, which would show the rest of the line reordered ("evil.exe" as
// "exe.live"), as the server's log escapes them too.
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with what a terminal would act on rather than show written as an escape. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.charCodeAt(0);
    return ESCAPES[char] ??
      (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * What the first connection's failure says: the handshake's status when the server refused it
 * (the server's log says why), else that nothing answered.
 */
export function connectFailure(
  options: { room: string; url: string; token?: string },
  status: number | null,
): string {
  if (status === null) {
    return `Could not connect to room "${options.room}" at ${shownUrl(options.url)}`;
  }
  const name = STATUS_TEXT[status as StatusCode];
  const said = name === undefined ? `${status}` : `${status} ${name}`;
  // A 403 does not say why: with a token, the token is the likely cause, not the only one.
  const why = status === 403 && options.token !== undefined
    ? "the token may be expired or revoked; the server's log says why"
    : status === 429
    ? "too many connections from here: close some first"
    : "the server's log says why";
  return `! Connection refused: Handshake status ${said} (${why})`;
}

/**
 * Why `line` cannot be sent, or `null`: its frame would be larger than the server takes
 * (`MAX_MESSAGE_BYTES` here, else the server's default).
 */
export function tooLongToSend(
  line: string,
  maxBytes = Number(Deno.env.get("MAX_MESSAGE_BYTES") || DEFAULT_MAX_MESSAGE_BYTES),
): string | null {
  // The frame as the client module sends it, with the longest ref it could carry.
  const frame = JSON.stringify({ message: line, ref: `r${Number.MAX_SAFE_INTEGER}`, ack: true });
  const bytes = new TextEncoder().encode(frame).length;
  if (bytes <= maxBytes) return null;
  const start = line.length > 40 ? `${line.slice(0, 40)}…` : line;
  return `! Not sent (${bytes} bytes, more than the server takes: ${maxBytes}): ${
    printable(start)
  }`;
}

/** One line about a send that failed; `error` is the `SendError` the stream rejected with. */
export function formatSendError(text: string, error: SendError): string {
  if (!error.maybeStored) return `! Not sent (${error.message}): ${text}`;
  const why = error.kind === "unconfirmed"
    ? "the server lost the answer from its storage"
    : error.kind === "no-answer"
    ? "no answer from the server in time"
    : "the connection was lost before the server answered";
  return `! Not confirmed (${why}): ${text}`;
}
