/**
 * The dice worker: the chat's `/roll NdM` as a background worker on the named channel `dice`.
 * The room's consumer hands it the command ({@linkcode CHAT_COMMAND}); it checks the dice,
 * rolls them with `crypto.getRandomValues`, and answers the whole room with a chat message
 * by the author "Dice" (into the room's stream, so it has an offset and is kept as history).
 * Bad dice are answered to the sender alone, as an error frame naming its `ref`; a command
 * that asked for an ack is acked once the roll is stored, with its offset.
 */
import {
  type ChannelWorker,
  type LayerEvent,
  type StreamRetention,
  validateGroupName,
} from "../mod.ts";
import { CHAT_ACK, CHAT_COMMAND, CHAT_ERROR } from "./chat.ts";
import { publishFailure } from "./chat_frames.ts";
import { type ChatMessage, chatMessageFromOutside } from "./chat_rooms.ts";

/** The named channel the dice worker listens on. */
export const DICE_CHANNEL = "dice";
/** The author of the worker's answers. */
export const DICE_AUTHOR = "Dice";
/** At most this many dice in one roll. */
export const MAX_DICE = 100;
/** At most this many faces per die. */
export const MAX_FACES = 1000;

const DICE = /^(\d{1,3})d(\d{1,4})$/i;
const USAGE = `Roll dice like /roll 2d6: 1 to ${MAX_DICE} dice of 2 to ${MAX_FACES} faces`;

/** The dice `NdM` names, or why it names none. */
export function parseDice(text: string): { count: number; faces: number } | { error: string } {
  const match = DICE.exec(text.trim());
  const count = Number(match?.[1]);
  const faces = Number(match?.[2]);
  if (match === null || count < 1 || count > MAX_DICE || faces < 2 || faces > MAX_FACES) {
    return { error: text.trim() === "" ? USAGE : `${JSON.stringify(text.trim())}: ${USAGE}` };
  }
  return { count, faces };
}

/** Rolls `count` dice of `faces` faces, uniformly (no modulo bias), with crypto randomness. */
export function rollDice(count: number, faces: number): number[] {
  const limit = Math.floor(2 ** 32 / faces) * faces;
  const rolls: number[] = [];
  const random = new Uint32Array(1);
  while (rolls.length < count) {
    crypto.getRandomValues(random);
    if (random[0] < limit) rolls.push((random[0] % faces) + 1);
  }
  return rolls;
}

/** How the dice worker is set up. */
export interface DiceWorkerOptions {
  /** What a room's stream keeps (default: the streams' own). */
  retention?: StreamRetention;
}

/** The `/roll` worker: answers the room with the roll, or the sender with what is wrong. */
export function diceWorker(options: DiceWorkerOptions = {}): ChannelWorker {
  return (ctx) => ({
    events: {
      [CHAT_COMMAND]: async (event) => {
        const { room, group, replyTo } = event;
        if (typeof room !== "string" || typeof group !== "string") {
          ctx.log.warn(`Dice worker: a "${CHAT_COMMAND}" event without a room and group`);
          return;
        }
        validateGroupName(group); // throws: a broken event, logged by the worker framework
        const dice = event.command === "roll" ? parseDice(String(event.args ?? "")) : {
          error: `The dice worker knows only /roll, not /${String(event.command)}`,
        };
        const ref = event.ref === undefined ? {} : { ref: event.ref };
        const answer = (reply: LayerEvent) =>
          typeof replyTo === "string" ? ctx.channelSend(replyTo, reply) : undefined;
        if ("error" in dice) {
          await answer({ type: CHAT_ERROR, error: dice.error, ...ref });
          return;
        }
        const rolls = rollDice(dice.count, dice.faces);
        const total = rolls.reduce((sum, roll) => sum + roll, 0);
        const who = typeof event.author === "string" ? event.author : "Someone";
        const text = `${who} rolled ${dice.count}d${dice.faces}: ` +
          (rolls.length === 1 ? `${total}` : `${rolls.join(" + ")} = ${total}`);
        const message = chatMessageFromOutside(
          { type: "chat.message", message: { message: text, author: DICE_AUTHOR } },
          room,
        ) as ChatMessage & LayerEvent;
        let stored;
        try {
          stored = await ctx.services.streams.publish(group, message, {
            retention: options.retention,
          });
        } catch (error) {
          // As for a message: one that may be stored must not be taken for refused.
          const failure = publishFailure(error);
          ctx.log.warn(
            `Dice worker: the roll for room "${room}" was ${
              failure.how === "undelivered"
                ? "stored, but not handed to the room live"
                : "not stored"
            }`,
            error,
          );
          await answer({
            type: CHAT_ERROR,
            error: failure.text,
            ...ref,
            ...(failure.unconfirmed && { unconfirmed: true }),
          });
          return;
        }
        if (event.ack === true) {
          await answer({ type: CHAT_ACK, offset: stored.offset, epoch: stored.epoch, ...ref });
        }
      },
    },
  });
}
