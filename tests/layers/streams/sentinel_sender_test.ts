/**
 * The order the Sentinel sender keeps, against a fake Sentinel client that hands commands to
 * the master's connection in an order the test chooses, as node-redis does after a master
 * search (the command that started it is handed over after the ones that waited for it).
 */
import { assertEquals, assertRejects } from "@std/assert";
import { AbortError } from "redis";
import {
  NotSentError,
  type SentinelCommands,
  sentinelSender,
} from "../../../layers/streams/_sentinel_sender.ts";

interface Held {
  args: string[];
  options: { abortSignal?: AbortSignal };
  answer: (value: unknown) => void;
  refuse: (error: unknown) => void;
}

/** A Sentinel client that holds every command until `handOver` queues it on the master. */
function heldSentinel() {
  const held: Held[] = [];
  const commands: SentinelCommands = {
    sendCommand(_readonly, args, options) {
      return new Promise((answer, refuse) => held.push({ args, options, answer, refuse }));
    },
  };
  /** Queues the command sent `index`-th; the master answers it with its own name. */
  const handOver = (index: number): "written" | "refused" => {
    const command = held[index];
    // node-redis reads the signal as it queues, and refuses a command aborted by then.
    if (command.options.abortSignal?.aborted) {
      command.refuse(new AbortError());
      return "refused";
    }
    command.answer(command.args[0]);
    return "written";
  };
  return { commands, handOver };
}

Deno.test("a write handed to the master after a later one is refused unwritten", async () => {
  const { commands, handOver } = heldSentinel();
  const send = sentinelSender(commands, "no answer");
  const first = send(["first"], 10_000);
  const second = send(["second"], 10_000);
  handOver(1);
  handOver(0);
  assertEquals(await second, "second");
  await assertRejects(() => first, NotSentError, "a later command was written first");
});

Deno.test("a read handed to the master after a later read is still answered", async () => {
  const { commands, handOver } = heldSentinel();
  const send = sentinelSender(commands, "no answer");
  // A client's recovery read, then a later read (a search for an unanswered publish).
  const recovery = send(["recovery"], 10_000, { read: true });
  const search = send(["search"], 10_000, { read: true });
  handOver(1);
  handOver(0);
  assertEquals(await search, "search");
  assertEquals(await recovery, "recovery");
});

Deno.test("a read that overtakes a write does not get the write refused", async () => {
  const { commands, handOver } = heldSentinel();
  const send = sentinelSender(commands, "no answer");
  const publish = send(["publish"], 10_000);
  const read = send(["read"], 10_000, { read: true });
  const next = send(["next publish"], 10_000);
  handOver(1);
  handOver(0);
  handOver(2);
  assertEquals(await read, "read");
  assertEquals(await publish, "publish");
  assertEquals(await next, "next publish");
});

Deno.test("a read still past its timeout is never written later", async () => {
  const { commands, handOver } = heldSentinel();
  const send = sentinelSender(commands, "no answer");
  const read = send(["read"], 1, { read: true });
  await assertRejects(() => read, NotSentError, "no master connection took it in time");
  // node-redis hands it over after all: the signal it reads then refuses it.
  assertEquals(handOver(0), "refused");
});
