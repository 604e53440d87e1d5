/**
 * What a client may send to a chat socket: a message frame (`{"message", "ref"?, "ack"?}`,
 * `"ack": true` with a `ref` only).
 * Each function says why, or what.
 */
import { MAX_FRAME_REF_LENGTH, refOf } from "../mod.ts";
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
