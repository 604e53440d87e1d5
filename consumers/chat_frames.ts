/**
 * What a client may send to a chat socket: a message frame (`{"message", "ref"?, "ack"?}`,
 * `"ack": true` with a `ref` only); and what its sender is told when its message did not go
 * through.
 * Each function says why, or what.
 */
import {
  MAX_FRAME_REF_LENGTH,
  PublishUnconfirmedError,
  PublishUndeliveredError,
  refOf,
} from "../mod.ts";
import { isBlank, isLongerThan, MAX_CHAT_MESSAGE, NOT_WELL_FORMED } from "./chat_rooms.ts";

/** Why a client frame is not a chat message it may send, or `null` when it is one. */
export function refusal(value: unknown): string | null {
  const message = (value as { message?: unknown } | null)?.message;
  if (typeof value !== "object" || value === null || typeof message !== "string") {
    return 'Expected a JSON object like {"message": "Hello"}';
  }
  const ref = (value as { ref?: unknown }).ref;
  if (ref !== undefined && refOf(value) === undefined) {
    return `"ref" must be a string of 1 to ${MAX_FRAME_REF_LENGTH} characters (well-formed ` +
      "Unicode) or a whole number";
  }
  // A client that asks for an ack some other way, or without a ref to answer, would wait for
  // one in vain: told at once instead.
  const ack = (value as { ack?: unknown }).ack;
  if (ack !== undefined && typeof ack !== "boolean") return '"ack" must be true or false';
  if (ack === true && ref === undefined) return '"ack": true needs a "ref" for the ack to carry';
  if (isBlank(message)) return "Message is empty";
  if (isLongerThan(message, MAX_CHAT_MESSAGE)) {
    return `Message is too long: at most ${MAX_CHAT_MESSAGE} characters`;
  }
  // JSON may write a lone surrogate (`"\ud800"`): no character, and a reader that encodes the
  // text as UTF-8 (Python's print) fails on it.
  if (!message.isWellFormed()) return NOT_WELL_FORMED;
  return null;
}

/** What the sender of a chat message is told when it was not stored. */
export const NOT_SENT = "Message not sent: the server cannot reach the other members right now";
/**
 * What the sender of a chat message is told when it was stored but not handed to the room live:
 * `unconfirmed` as well, so a client shows it once a recovery does.
 */
export const NOT_DELIVERED = "Message stored, but not handed to the room's members live: they " +
  "get it when they next read the room";
/** What the sender of a chat message is told when it may have been stored: no answer came. */
export const NOT_CONFIRMED =
  "Message not confirmed: the server lost the answer from its storage, so it may have been sent";

/** How a publish of a chat message failed: for the log's count, and the sender's error frame. */
export interface PublishFailure {
  /** Not made; made with no answer; or stored but not handed to the room's members live. */
  how: "unsent" | "unconfirmed" | "undelivered";
  /** What its sender is told. */
  text: string;
  /** Whether it may be stored: the sender must not send it again. */
  unconfirmed: boolean;
}

/** How the publish that failed with `error` went (see {@linkcode PublishFailure}). */
export function publishFailure(error: unknown): PublishFailure {
  if (error instanceof PublishUndeliveredError) {
    return { how: "undelivered", text: NOT_DELIVERED, unconfirmed: true };
  }
  if (error instanceof PublishUnconfirmedError) {
    return { how: "unconfirmed", text: NOT_CONFIRMED, unconfirmed: true };
  }
  return { how: "unsent", text: NOT_SENT, unconfirmed: false };
}
