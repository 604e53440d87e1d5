/**
 * A signed-in socket's expiry timer, on a fake clock: it closes at the expiry itself, and the
 * waits of many sockets come in few, short lengths. Deno keeps one timer list per distinct
 * length until that length has passed, even for a timer cleared at once, so a wait per socket
 * of its own days left held memory for two weeks after every signed-in socket closed.
 */
import { assert, assertEquals } from "@std/assert";
import { closeAtExpiry, type ExpiryClock } from "../../server/_identity_expiry.ts";
import { FakeClock } from "../layers/_fake_clock.ts";

const HOUR_MS = 60 * 60 * 1000;
const SESSION_MAX_AGE_MS = 14 * 24 * HOUR_MS;

// A fake clock that notes every wait asked of it.
class NotingClock extends FakeClock implements ExpiryClock {
  waits: number[] = [];
  override setTimeout(callback: () => void, ms: number): number {
    this.waits.push(ms);
    return super.setTimeout(callback, ms);
  }
}

// A socket that notes when it was closed; `finish` is the socket closing on its own.
function fakeSocket(clock: FakeClock) {
  const finished: (() => void)[] = [];
  const socket = {
    closedAt: null as number | null,
    closedWith: null as [number | undefined, string | undefined] | null,
    close(code?: number, reason?: string): void {
      socket.closedAt = clock.now();
      socket.closedWith = [code, reason];
    },
    onFinished(listener: () => void): void {
      finished.push(listener);
    },
    finish: (): void => finished.forEach((listener) => listener()),
  };
  return socket;
}

Deno.test("10,000 sessions expiring over 14 days close at their expiry, with few and short waits", () => {
  const waits = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const clock = new NotingClock();
    // Spread over the whole session age, and different to the millisecond.
    const expiresAt = clock.now() + Math.floor((i + 0.37) * SESSION_MAX_AGE_MS / 10_000) + i % 997;
    const socket = fakeSocket(clock);
    closeAtExpiry(socket, expiresAt, "Session expired: log in again", { clock });
    clock.advance(SESSION_MAX_AGE_MS + HOUR_MS);
    assertEquals(socket.closedAt, expiresAt);
    assertEquals(socket.closedWith, [4001, "Session expired: log in again"]);
    for (const wait of clock.waits) waits.add(wait);
  }
  const longest = Math.max(...waits);
  assert(longest <= HOUR_MS, `a wait of ${longest} ms keeps its timer list that long`);
  // Hour steps, then whole seconds, then what is left of the last second.
  const overASecond = [...waits].filter((wait) => wait >= 1000);
  assert(overASecond.length <= 3600, `${overASecond.length} distinct waits of a second or more`);
  assert(overASecond.every((wait) => wait % 1000 === 0), "waits of a second or more are whole");
});

Deno.test("a socket that closes before its expiry leaves no timer behind", () => {
  const clock = new NotingClock();
  const socket = fakeSocket(clock);
  closeAtExpiry(socket, clock.now() + SESSION_MAX_AGE_MS, "Session expired: log in again", {
    clock,
  });
  assertEquals(clock.pending, 1);
  socket.finish();
  assertEquals(clock.pending, 0);
  clock.advance(SESSION_MAX_AGE_MS);
  assertEquals(socket.closedAt, null);
});

Deno.test("a socket whose session already ended closes at once", () => {
  const clock = new NotingClock();
  const socket = fakeSocket(clock);
  closeAtExpiry(socket, clock.now(), "Token expired: log in again", { clock });
  assertEquals(socket.closedWith, [4001, "Token expired: log in again"]);
  assertEquals(clock.waits, []);
});
