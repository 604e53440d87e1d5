/**
 * The names the site shows as authors that are no account's: a chat's anonymous visitors, a
 * message sent from outside, the dice worker. No account may take them (sign-up and
 * `deno task createsuperuser` refuse them), or it could pass for one of them.
 */
import { ANONYMOUS_AUTHOR, EXTERNAL_AUTHOR } from "./chat_rooms.ts";
import { DICE_AUTHOR } from "./dice_worker.ts";

/** Usernames no account may take, whatever their case. */
export const RESERVED_USERNAMES: readonly string[] = [
  ANONYMOUS_AUTHOR,
  EXTERNAL_AUTHOR,
  DICE_AUTHOR,
];
