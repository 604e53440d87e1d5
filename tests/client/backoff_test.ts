import { assert, assertEquals, assertThrows } from "@std/assert";
import { Backoff, reconnectDelays } from "../../client/backoff.js";
import { LiveSocket } from "../../client/live_socket.js";
import { drop, fakeSockets, open } from "./_fake_socket.ts";

Deno.test("reconnect delays double from 0.5 s up to 10 s", () => {
  const highest = new Backoff({ random: () => 1 });
  const delays = Array.from({ length: 8 }, () => highest.next());
  assertEquals(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
});

Deno.test("jitter keeps each delay within the upper half of its step", () => {
  const lowest = new Backoff({ random: () => 0 });
  assertEquals([lowest.next(), lowest.next(), lowest.next()], [250, 500, 1000]);
  const random = new Backoff();
  for (let i = 0; i < 50; i++) {
    const delay = random.next();
    assert(delay >= 250 && delay <= 10_000, `delay ${delay} out of range`);
  }
});

Deno.test("a reset starts again from the shortest delay", () => {
  const backoff = new Backoff({ random: () => 1 });
  backoff.next();
  backoff.next();
  backoff.reset();
  assertEquals(backoff.attempts, 0);
  assertEquals(backoff.next(), 500);
});

Deno.test("after a policy close the short delays are skipped", () => {
  const backoff = new Backoff({ random: () => 1 });
  backoff.atLeast(3);
  assertEquals(backoff.next(), 4000);
  backoff.atLeast(1); // never shortens
  assertEquals(backoff.next(), 8000);
});

Deno.test("settings that would take the backoff away are refused at once", () => {
  const cases = [
    [{ initialMs: 0 }, "initialMs must be"], // 0 doubled stays 0: reconnects with no wait
    [{ initialMs: -5 }, "initialMs must be"],
    [{ initialMs: Number.NaN }, "initialMs must be"],
    [{ maxMs: 2 ** 31 }, "maxMs must be"], // a timer fires it at once
    [{ initialMs: 1000, maxMs: 500 }, "maxMs must be"],
    [{ random: 0.5 as unknown as () => number }, "random must be a function"],
  ] as const;
  for (const [options, message] of cases) {
    assertThrows(() => new Backoff(options), TypeError, message);
  }
  assertEquals(new Backoff({ initialMs: 1, maxMs: 2 ** 31 - 1, random: () => 1 }).next(), 1);
});

Deno.test("a backoff given as its options is made into one; anything else is refused at once", () => {
  const made = reconnectDelays({ initialMs: 1000, maxMs: 30_000, random: () => 1 });
  assertEquals([made.next(), made.next(), made.attempts], [1000, 2000, 2]);
  const own = new Backoff();
  assertEquals(reconnectDelays(own), own);
  assertEquals(reconnectDelays(undefined).attempts, 0);
  const cases: [unknown, string][] = [
    [{ min: 1000 }, "min"], // a typo, not silently the default
    [{ next: () => 5 }, "has no reset, atLeast, attempts"], // half a backoff: it threw at a loss
    [5000, "not 5000"],
    [null, "not null"],
    [{ initialMs: 0 }, "initialMs must be"],
    // A class of the app's own without the attempts it must count: not taken for options.
    [
      new (class {
        next() {
          return 5;
        }
        reset() {}
        atLeast() {}
      })(),
      "has no attempts",
    ],
  ];
  for (const [given, message] of cases) {
    assertThrows(() => reconnectDelays(given), TypeError, message);
  }
});

Deno.test("a socket given its backoff's options reconnects with them; a wrong backoff throws at once", async () => {
  const sockets = fakeSockets();
  const states: string[] = [];
  const live = new LiveSocket("ws://chat.test/ws/", {
    WebSocket: sockets.WebSocket,
    window: new EventTarget(),
    backoff: { initialMs: 2, maxMs: 20, random: () => 1 },
    onState: (state) => states.push(state),
  });
  live.start();
  const first = await sockets.next();
  open(first);
  drop(first, 1006);
  open(await sockets.next());
  assertEquals(states, ["connecting", "open", "reconnecting", "reconnecting", "open"]);
  live.stop();
  assertThrows(
    () => new LiveSocket("ws://chat.test/ws/", { backoff: { min: 1 } as never }),
    TypeError,
    "backoff must be",
  );
});
