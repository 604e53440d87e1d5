/**
 * The receive loop of a channels_redis layer: every channel of this process shares one inbox,
 * which this loop pops on a connection of its own (`BZPOPMIN` blocks it) and routes by
 * `__asgi_channel__` to the channels of this process a message names.
 */
import type { Buffer } from "node:buffer";
import type { LayerEvent } from "./layer.ts";
import type { RedisClient } from "../storage/redis_connection.ts";
import { deserializeMessage } from "./_channels_redis_wire.ts";
import { BUFFER_REPLIES, POP_TIMEOUT_SECONDS } from "./_channels_redis_commands.ts";
import { log } from "../telemetry/log.ts";
import { QuietWarning } from "../telemetry/quiet_warning.ts";

/** Messages taken at once when the inbox already holds some. */
const DRAIN_BATCH = 100;

/** This process's inbox and what to do with what arrives in it. */
export interface Inbox {
  /** The connection the blocking pops hold; destroying it ends the loop. */
  receiver: RedisClient;
  /** The inbox's key, `<prefix>specific.<client prefix>!`. */
  key: string;
  /** The start of this process's channel names, `specific.<client prefix>!`. */
  localPrefix: string;
  /** True once the layer closes: the loop ends instead of retrying. */
  isClosed(): boolean;
  /**
   * Hands an event to the given channels of this process; for one a `group_send` sent, with the
   * score it was queued under: its sender's clock, the same in every inbox the send reached.
   */
  deliverHere(channels: string[], event: LayerEvent, groupSendScore: string | null): void;
}

/** Pops this process's inbox until closed: one message at a time when idle, else batches. */
export async function receiveInbox(inbox: Inbox): Promise<void> {
  let idle = false;
  while (!inbox.isClosed()) {
    try {
      const messages = await pop(inbox, idle);
      for (const [message, score] of messages) {
        try {
          receive(inbox, message, score);
        } catch (error) {
          // Taken from Redis already: one that cannot be delivered must not take the rest along.
          log.warn("Ignored a message in this process's inbox: it could not be delivered", error);
        }
      }
      // Drain while a batch came back full; otherwise block until the next message.
      idle = idle ? messages.length === 0 : messages.length < DRAIN_BATCH;
    } catch (error) {
      if (inbox.isClosed()) return;
      log.debug(`channels_redis receive failed; retrying: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** `BZPOPMIN` (one message, blocking) when idle, else `ZPOPMIN` of a batch: [message, score]. */
async function pop(inbox: Inbox, idle: boolean): Promise<[Buffer, string][]> {
  if (idle) {
    // [key, member, score], or null when the wait timed out.
    const reply = await inbox.receiver.sendCommand<Buffer[] | null>(
      ["BZPOPMIN", inbox.key, String(POP_TIMEOUT_SECONDS)],
      BUFFER_REPLIES,
    );
    return reply === null ? [] : [[reply[1], reply[2].toString()]];
  }
  // [member, score, member, score, ...], lowest scores first.
  const reply = await inbox.receiver.sendCommand<Buffer[]>(
    ["ZPOPMIN", inbox.key, String(DRAIN_BATCH)],
    BUFFER_REPLIES,
  );
  const messages: [Buffer, string][] = [];
  for (let i = 0; i < reply.length; i += 2) messages.push([reply[i], reply[i + 1].toString()]);
  return messages;
}

// By inbox: the warnings of messages it could not read, once a minute.
const unreadable = new WeakMap<Inbox, QuietWarning>();

/** Routes one message by `__asgi_channel__` to the channels of this process it names. */
function receive(inbox: Inbox, message: Uint8Array, score: string): void {
  const decoded = deserializeMessage(message);
  if ("problem" in decoded) {
    // A Django sender that writes what this server cannot read writes it with every message: one
    // line a minute, with how many.
    let warning = unreadable.get(inbox);
    if (warning === undefined) unreadable.set(inbox, warning = new QuietWarning());
    const line = `Ignored a message in this process's inbox: ${decoded.problem}`;
    warning.warn(
      "unreadable",
      line,
      (count) =>
        `Ignored ${count} messages in this process's inbox since the last such line; ` +
        `the latest: ${decoded.problem}`,
    );
    return;
  }
  const here = decoded.channels.filter((channel) => channel.startsWith(inbox.localPrefix));
  inbox.deliverHere(here, decoded.event, decoded.groupSend ? score : null);
}
