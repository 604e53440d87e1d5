/**
 * The load generator: a separate process that holds the bench's client connections and runs
 * traffic on request. It reads one JSON request per line on stdin and answers one JSON line
 * on stdout (`{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`); it exits when
 * stdin closes. Started by `bench/_generator.ts`; not meant to be run by hand.
 */
import { ReadPacer, WireClient } from "./_wire.ts";
import { PacedWire } from "./_paced_wire.ts";
import { libc } from "./_libc.ts";
import type { TextHandler, Wire } from "./_frames.ts";
import { type BenchClient, type ClientSet, runTraffic } from "./_traffic.ts";
import type { CloseRequest, ConnectRequest, ConnectResult, GeneratorRequest } from "./_protocol.ts";

const sets = new Map<string, ClientSet>();
let runs = 0;
const TIMED_EVERY = 10;
// Where libc cannot be used, paced clients are Deno sockets read once per tick: cheaper than
// reading every frame at once, though each frame still wakes the event loop.
const fallbackPacer = new ReadPacer(10);

const NEWLINE = 0x0a;
// A client that asked for batched frames (`?batch=1`) gets several messages per frame.
const BATCHING = /[?&]batch=1(&|$)/;

// Hands each line of a batched frame (newline-delimited JSON) to `onText` as a frame of its own,
// all with the frame's read time: the messages are counted and timed one by one.
function eachLine(onText: TextHandler): TextHandler {
  return (bytes, start, end, readAt) => {
    let from = start;
    for (let i = start; i < end; i++) {
      if (bytes[i] === NEWLINE) {
        onText(bytes, from, i, readAt);
        from = i + 1;
      }
    }
    onText(bytes, from, end, readAt);
  };
}

// A timed or stalled client is a Deno socket; a paced one a libc socket when possible.
async function open(port: number, path: string, paced: boolean): Promise<Wire> {
  const c = paced ? libc() : null;
  if (c !== null) return PacedWire.connect(c, port, path);
  return await WireClient.connect(port, path, paced ? { pacer: fallbackPacer } : {});
}

async function connect(request: ConnectRequest): Promise<ConnectResult> {
  const started = performance.now();
  if (sets.has(request.set)) throw new Error(`Client set "${request.set}" already exists`);
  const set: ClientSet = {
    clients: [],
    roomCount: request.rooms.length,
    listener: null,
  };
  sets.set(request.set, set);
  const timedEvery = request.timedEvery ?? TIMED_EVERY;
  const jobs: { room: number; path: string; timed: boolean }[] = [];
  request.rooms.forEach((name, room) => {
    const path = request.pathTemplate.replace("{room}", encodeURIComponent(name));
    for (let j = 0; j < request.perRoom; j++) {
      // Shifted by room: with 10 clients a room, 1 in 10 timed would otherwise always be the
      // first, which is also the room's sender, so every sample would be a sender's own echo.
      jobs.push({ room, path, timed: (j + room) % timedEvery === 0 });
    }
  });
  const slots: (BenchClient | null)[] = new Array(jobs.length).fill(null);
  let failed = 0, firstError: string | null = null, next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const index = next++;
      const { room, path, timed } = jobs[index];
      try {
        const reading = request.mode === "read";
        const wire = await open(request.port, path, reading && !timed);
        const client: BenchClient = { wire, room, reading, timed, markerAt: 0 };
        if (reading) {
          const onText: TextHandler = (bytes, start, end, at) =>
            set.listener?.(client, bytes, start, end, at);
          wire.startReading(BATCHING.test(path) ? eachLine(onText) : onText);
        }
        slots[index] = client;
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: request.concurrency ?? 32 }, worker));
  set.clients = slots.filter((client): client is BenchClient => client !== null);
  return {
    connected: set.clients.length,
    failed,
    firstError,
    seconds: (performance.now() - started) / 1000,
  };
}

function close(request: CloseRequest): { closed: number } {
  const set = sets.get(request.set);
  sets.delete(request.set);
  for (const client of set?.clients ?? []) client.wire.close();
  return { closed: set?.clients.length ?? 0 };
}

function handle(request: GeneratorRequest): Promise<unknown> | unknown {
  switch (request.op) {
    case "connect":
      return connect(request);
    case "traffic": {
      const set = sets.get(request.set);
      if (set === undefined) throw new Error(`No client set "${request.set}"`);
      return runTraffic(set, request, ++runs);
    }
    case "close":
      return close(request);
    default:
      throw new Error(`Unknown request ${JSON.stringify(request)}`);
  }
}

if (import.meta.main) {
  const encoder = new TextEncoder();
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let buffered = "";
  for await (const chunk of lines) {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      let answer: unknown;
      try {
        answer = { ok: true, result: await handle(JSON.parse(line)) };
      } catch (error) {
        answer = { ok: false, error: (error as Error).message };
      }
      await Deno.stdout.write(encoder.encode(JSON.stringify(answer) + "\n"));
    }
  }
  for (const set of sets.values()) for (const client of set.clients) client.wire.close();
  Deno.exit(0);
}
