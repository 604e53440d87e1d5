/**
 * A client that stops reading must not make the server's memory grow: what cannot be sent to
 * it is dropped and counted, and it is closed with 1013, while the others get everything.
 */
import { assert, assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { TestSocket } from "../_support/socket.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const CAPACITY = 10;
const PADDING = "x".repeat(9000);
// Enough to fill the kernel's socket buffers on loopback (a few MiB) many times over.
const MAX_MESSAGES = 3000;

Deno.test("a client that stops reading is cut off while the room keeps everything", async () => {
  await using server = await startTestServer({
    channelCapacity: CAPACITY,
    maxBufferedBytes: 64 * 1024,
    rateLimit: { perSecond: 100_000, burst: 100_000 },
  });
  const room = server.wsUrl("/ws/chat/volume/");
  const slow = await RawWebSocket.open(room);
  const [sender, listener] = [await RawWebSocket.open(room), await TestSocket.open(room)];
  const layer = server.app.services.layer;
  const sent: string[] = [];
  const say = async (id: string) => {
    sent.push(id);
    await sender.send(JSON.stringify({ message: `${id} ${PADDING}` }));
    while (!String(JSON.parse(await sender.nextText()).message).startsWith(`${id} `));
  };
  try {
    // Chat at volume until the server has given up on the slow reader.
    while (layer.stats().dropped < CAPACITY && sent.length < MAX_MESSAGES) {
      await say(`m${sent.length}`);
    }
    assert(layer.stats().dropped >= CAPACITY, `no drops after ${sent.length} messages`);
    for (let n = 0; n < 5; n++) await say(`after${n}`);

    const heard = [];
    for (const _ of sent) heard.push(String((await listener.nextJson()).message).split(" ")[0]);
    assertEquals(heard, sent, "a client that reads lost messages");

    const { texts, closeCode } = await slow.readUntilClose();
    assertEquals(closeCode, 1013);
    const got = texts.map((text) => String(JSON.parse(text).message).split(" ")[0]);
    assert(got.length < sent.length, "the slow reader was sent everything: nothing was bounded");
    assertEquals(got, sent.slice(0, got.length), "what the slow reader got is in order");
  } finally {
    slow.close();
    sender.close();
    await listener.close();
  }
});

/**
 * A room whose raw reader `slow` falls behind: it is never closed for its drops (it must be sent
 * them again), and `say` posts the next 9 KB message and waits for its echo to the sender.
 */
async function roomWithSlowReader(maxBufferedBytes: number, query = "") {
  const server = await startTestServer({
    channelCapacity: 100_000,
    maxBufferedBytes,
    rateLimit: { perSecond: 100_000, burst: 100_000 },
  });
  const room = server.wsUrl("/ws/chat/burst/");
  const slow = await RawWebSocket.open(room + query);
  const sender = await RawWebSocket.open(room);
  const layer = server.app.services.layer;
  const sent: string[] = [];
  const say = async () => {
    const id = `m${sent.length}`;
    sent.push(id);
    await sender.send(JSON.stringify({ message: `${id} ${PADDING}` }));
    while (!String(JSON.parse(await sender.nextText()).message).startsWith(`${id} `));
  };
  return {
    slow,
    sent,
    say,
    /** Posts until the server has dropped one for the reader. */
    async burst(): Promise<void> {
      while (layer.stats().dropped === 0 && sent.length < MAX_MESSAGES) await say();
      assert(layer.stats().dropped > 0, `no drops after ${sent.length} messages`);
    },
    async [Symbol.asyncDispose]() {
      slow.close();
      sender.close();
      await server[Symbol.asyncDispose]();
    },
  };
}

const FELL_BEHIND: {
  kind: string;
  query?: string;
  maxBufferedBytes: number;
  /** Messages sent on after the first drop: the longer the replay. */
  more?: number;
  /** The reader stops for 2 s after this many messages (a stalling link). */
  pauseAfter?: number;
}[] = [
  { kind: "", maxBufferedBytes: 64 * 1024 },
  { kind: " (batching)", query: "?batch=1", maxBufferedBytes: 64 * 1024 },
  // Each message alone is more than the bound: the replay must still send it.
  { kind: " (messages larger than the bound)", maxBufferedBytes: 8 * 1024 },
  // A long replay, and a reader that stops for a while in the middle of it: the replay waits
  // for it, rather than overfill its socket and have it closed as too slow.
  { kind: " (a reader that pauses)", maxBufferedBytes: 64 * 1024, more: 800, pauseAfter: 100 },
];
for (const { kind, query = "", maxBufferedBytes, more = 0, pauseAfter } of FELL_BEHIND) {
  Deno.test(`a reader that fell behind and was not cut off gets what was dropped once it catches up${kind}`, async () => {
    await using room = await roomWithSlowReader(maxBufferedBytes, query);
    const { slow, sent, say } = room;
    // A burst the reader cannot keep up with, then the room goes quiet: no later message comes
    // to show it a gap.
    await room.burst();
    for (let n = 0; n < more; n++) await say();
    const got: string[] = [];
    // Given up on (the read then fails) if the dropped ones never come.
    const giveUp = setTimeout(() => slow.close(), 30_000);
    try {
      while (got.length < sent.length) {
        // A batching client's frame holds several, one JSON object a line.
        for (const line of (await slow.nextText()).split("\n")) {
          got.push(String(JSON.parse(line).message).split(" ")[0]);
          if (got.length === pauseAfter) {
            await new Promise((resolve) => setTimeout(resolve, 2000));
          }
        }
      }
    } finally {
      clearTimeout(giveUp);
    }
    assertEquals(got, sent, "the reader did not get every message once, in order");
  });
}

Deno.test("a client that sends but never reads the replies is closed with 1013, not buffered", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({
    logLevel: "info",
    maxBufferedBytes: 64 * 1024,
    rateLimit: { perSecond: 100_000, burst: 100_000 },
  });
  const echo = await RawWebSocket.open(server.wsUrl("/ws/echo/"));
  const other = await TestSocket.open(server.wsUrl("/ws/echo/"));
  const frame = "y".repeat(30_000); // 12 MB of echoes in all, far past what the kernel holds
  try {
    const closed = captured.waitFor(/DISCONNECT \/ws\/echo\/.*closed by the server: 1013/, 20_000);
    // Until the server closes (our writes then fail), or all 400 were taken: unbounded.
    const writes = (async () => {
      for (let sent = 0; sent < 400; sent++) await echo.send(frame);
    })().catch(() => {});
    await closed;
    await writes;
    // Another client of the same route was never hurt.
    other.send("still here");
    assertEquals(await other.next(), "You said: still here");
  } finally {
    echo.close();
    await other.close();
  }
});

Deno.test("a reader that fell behind catches up while the room goes on at a pace it can read", async () => {
  await using room = await roomWithSlowReader(64 * 1024);
  const { slow, sent, say } = room;
  await room.burst();
  for (let n = 0; n < 100; n++) await say();
  // 20 messages a second go on for 8 s; the reader reads one frame every 20 ms, faster than
  // that, so it catches up (the replay and the live messages after it, each once).
  const goesOn = (async () => {
    for (let n = 0; n < 160; n++) {
      await say();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const got: string[] = [];
  const giveUp = setTimeout(() => slow.close(), 40_000);
  try {
    while (got.length < sent.length) {
      got.push(String(JSON.parse(await slow.nextText()).message).split(" ")[0]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await goesOn;
    while (got.length < sent.length) {
      got.push(String(JSON.parse(await slow.nextText()).message).split(" ")[0]);
    }
  } finally {
    clearTimeout(giveUp);
  }
  assertEquals(got, sent, "the reader did not get every message once, in order");
});
