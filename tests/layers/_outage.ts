/**
 * Redis going away and coming back empty, as every Redis-backed layer must take it: a send
 * meanwhile rejects, says which Redis and is known as unavailable (a 503, not a 500), and once
 * it is back the groups deliver again, including one joined while it was away.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { GroupLayer } from "../../layers/layer.ts";
import { startRedisServer, uniquePrefix } from "../_support/redis.ts";
import { Inbox } from "./_inbox.ts";
import { isBackendUnavailable } from "../../storage/unavailable.ts";

/** Runs the outage on a private Redis, with two layers that `open` makes on one prefix. */
export async function assertOutageRecovered(
  open: (url: string, prefix: string) => Promise<GroupLayer>,
): Promise<void> {
  await using server = await startRedisServer();
  const prefix = uniquePrefix("outage");
  const sender = await open(server.url, prefix);
  const receiver = await open(server.url, prefix);
  try {
    const inbox = new Inbox(receiver, 10_000);
    await receiver.groupAdd("room", inbox.channel);
    await server.stop();
    const refused = await assertRejects(
      () => sender.groupSend("room", { type: "lost" }),
      Error,
      `Redis at ${server.url} is unreachable`,
    );
    // Told apart from a bug: a page or a handshake that meets it answers 503, not 500.
    assert(isBackendUnavailable(refused), `taken for a bug: ${Deno.inspect(refused)}`);
    // Joining while Redis is away works locally, and reaches Redis on reconnect.
    const late = new Inbox(receiver, 10_000);
    await receiver.groupAdd("late-room", late.channel);
    await server.restart(); // empty: what the layer keeps there must be restored
    const deadline = Date.now() + 15_000;
    while (inbox.count("back") === 0 || late.count("back") === 0) {
      assert(Date.now() < deadline, "no delivery after the restart");
      await sender.groupSend("room", { type: "back" }).catch(() => null);
      await sender.groupSend("late-room", { type: "back" }).catch(() => null);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertEquals(inbox.count("lost"), 0);
  } finally {
    await sender.close();
    await receiver.close();
  }
}
