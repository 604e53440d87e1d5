/**
 * The chat's `/roll` on the in-process layer: the room's consumer hands it to the dice worker
 * (running in the same process), which answers the whole room; bad dice and a missing worker
 * are answered to the sender as error frames.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Communicator } from "../../testing.ts";
import { runChannelWorkers } from "../../mod.ts";
import { createTestApp, type TestApp } from "../_support/test_app.ts";
import { siteWorkers } from "../../routes/workers.ts";
import { parseDice, rollDice } from "../../consumers/dice_worker.ts";

async function join(app: TestApp, room: string): Promise<Communicator> {
  const comm = new Communicator(app, `/ws/chat/${room}/`);
  assert((await comm.connect()).accepted, `joining "${room}" was refused`);
  return comm;
}

/** The site with its dice worker running in the same process. */
async function appWithDice() {
  const app = await createTestApp();
  const workers = await runChannelWorkers(siteWorkers(app.services.config), app.services);
  return {
    app,
    workers,
    async [Symbol.asyncDispose]() {
      await workers.close();
      await app[Symbol.asyncDispose]();
    },
  };
}

Deno.test("/roll 2d6 is answered to the whole room by the dice worker", async () => {
  await using site = await appWithDice();
  const [roller, other] = [await join(site.app, "lobby"), await join(site.app, "lobby")];
  roller.sendJson({ message: "/roll 2d6" });
  for (const member of [roller, other]) {
    const frame = await member.receiveJson();
    assertEquals([frame.type, frame.author, frame.room], ["chat.message", "Dice", "lobby"]);
    const [, a, b, total] =
      String(frame.message).match(/^Anonymous rolled 2d6: (\d) \+ (\d) = (\d+)$/) ??
        [];
    assert(total !== undefined, `not a roll of 2d6: ${frame.message}`);
    assert([a, b].every((d) => Number(d) >= 1 && Number(d) <= 6), String(frame.message));
    assertEquals(Number(a) + Number(b), Number(total));
    assertEquals(typeof frame.offset, "number", "the roll is not in the room's stream");
  }
});

Deno.test("a roll is kept in the room's history like any message", async () => {
  await using site = await appWithDice();
  const roller = await join(site.app, "lobby");
  roller.sendJson({ message: "/roll 1d20" });
  assertMatch(String((await roller.receiveJson()).message), /^Anonymous rolled 1d20: \d+$/);
  const later = await join(site.app, "lobby");
  const history = await later.receiveJson();
  assertEquals([history.author, history.history], ["Dice", true]);
});

Deno.test("bad dice get an error frame with the ref, for the sender alone", async () => {
  await using site = await appWithDice();
  const [roller, other] = [await join(site.app, "lobby"), await join(site.app, "lobby")];
  for (
    const [n, bad] of ["/roll 0d6", "/roll 2d1", "/roll 101d6", "/roll two", "/roll"].entries()
  ) {
    roller.sendJson({ message: bad, ref: `r${n}` });
    const frame = await roller.receiveJson();
    assertEquals([frame.type, frame.ref], ["error", `r${n}`], `${bad} was not refused`);
    assertMatch(String(frame.error), /Roll dice like \/roll 2d6/);
  }
  roller.sendJson({ message: "marker" });
  // The other member's first frame is the marker: no error and no roll reached it.
  assertEquals((await other.receiveJson()).message, "marker");
});

Deno.test("/roll asked with an ack is acked once the roll is stored, with its offset", async () => {
  await using site = await appWithDice();
  const roller = await join(site.app, "lobby");
  roller.sendJson({ message: "/roll 2d6", ref: "r1", ack: true });
  const roll = await roller.receiveJson();
  assertEquals(roll.author, "Dice");
  assertEquals(await roller.receiveJson(), {
    type: "ack",
    ref: "r1",
    offset: roll.offset,
    epoch: roll.epoch,
  });
  // Bad dice asked with an ack get the error alone: never an ack and an error for one frame.
  roller.sendJson({ message: "/roll 0d6", ref: "r2", ack: true });
  assertEquals([(await roller.receiveJson()).type], ["error"]);
  roller.sendJson({ message: "marker" });
  assertEquals((await roller.receiveJson()).message, "marker");
});

Deno.test("with no dice worker running, /roll gets an error frame and is not published", async () => {
  await using app = await createTestApp();
  const [roller, other] = [await join(app, "lobby"), await join(app, "lobby")];
  roller.sendJson({ message: "/roll 2d6", ref: 7 });
  assertEquals(await roller.receiveJson(), {
    type: "error",
    error: "No dice worker is running",
    message: "No dice worker is running",
    ref: 7,
  });
  roller.sendJson({ message: "marker" });
  assertEquals((await other.receiveJson()).message, "marker");
});

Deno.test("a message that only looks like a command is published as it is", async () => {
  await using site = await appWithDice();
  const member = await join(site.app, "lobby");
  for (const text of ["/shrug", "/ roll 2d6", "/rolling 2d6"]) {
    member.sendJson({ message: text });
    assertEquals((await member.receiveJson()).message, text);
  }
});

Deno.test("dice are parsed strictly and rolled within their faces", () => {
  assertEquals(parseDice(" 3d8 "), { count: 3, faces: 8 });
  assertEquals(parseDice("100D1000"), { count: 100, faces: 1000 });
  for (const bad of ["", "d6", "2d", "0d6", "2d1", "101d6", "2d1001", "2d6+1", "-1d6"]) {
    assert("error" in parseDice(bad), `${bad} was accepted`);
  }
  const rolls = rollDice(1000, 6);
  assertEquals(rolls.length, 1000);
  assert(rolls.every((roll) => Number.isInteger(roll) && roll >= 1 && roll <= 6));
  assertEquals(new Set(rolls).size, 6, "1000 rolls of a d6 did not show every face");
});
