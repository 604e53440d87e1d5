/**
 * What a client may send to a chat socket: a message frame (`{"message", "ref"?, "ack"?}`) and,
 * in the socket's URL, the position it reconnects from. Each function says why, or what.
 */
import { asFrameRef, type FrameRef, MAX_FRAME_REF_LENGTH, type StreamPosition } from "../mod.ts";
import { MAX_CHAT_MESSAGE } from "./chat_rooms.ts";

/** The position a reconnecting client names with `?epoch=E&since=N`; `null` without one. */
export function positionOf(query: URLSearchParams): StreamPosition | null {
  const epoch = query.get("epoch");
  const since = query.get("since");
  if (epoch === null && since === null) return null;
  const offset = Number(since);
  // A position that cannot be one recovers nothing: the client gets the last 50.
  if (
    epoch === null || since === null || since === "" || !Number.isSafeInteger(offset) || offset < 0
  ) {
    return { epoch: "", offset: 0 };
  }
  return { epoch, offset };
}

/** A frame's `ref` (see `asFrameRef`); `undefined` when it has none or an invalid one. */
export function refOf(value: unknown): FrameRef | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return asFrameRef((value as { ref?: unknown }).ref);
}

/** Why a client frame is not a chat message it may send, or `null` when it is one. */
export function refusal(value: unknown): string | null {
  const message = (value as { message?: unknown } | null)?.message;
  if (typeof value !== "object" || value === null || typeof message !== "string") {
    return 'Expected a JSON object like {"message": "Hello"}';
  }
  const ref = (value as { ref?: unknown }).ref;
  if (ref !== undefined && refOf(value) === undefined) {
    return `"ref" must be a string of 1 to ${MAX_FRAME_REF_LENGTH} characters or a whole number`;
  }
  if (message.trim() === "") return "Message is empty";
  if (message.length > MAX_CHAT_MESSAGE) {
    return `Message is too long: at most ${MAX_CHAT_MESSAGE} characters`;
  }
  return null;
}
