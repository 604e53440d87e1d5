/**
 * The reconnect storm's load: a separate process holding the chat clients that use the
 * recovery protocol (see the README's delivery protocol), and one sender per room that stays
 * connected throughout. Started by `scenarios/reconnect_storm.ts`; not meant to be run by hand.
 *
 * It reads one {@linkcode StormRequest} line on stdin, opens every client with `?stream=1`,
 * starts the senders and says `flowing`. On a `drop` line it closes every client's socket at
 * the same moment; each reconnects after the browser module's backoff (`client/backoff.js`)
 * with `?epoch=E&since=N`, its last offset. It says `recovered` once every client has caught
 * up with what it missed, lets the messages flow `afterMs` longer, stops the senders, waits for
 * the last deliveries, and answers `done` with a {@linkcode StormResult}.
 *
 * Every client counts each chat frame by offset: an offset of its room it never got is lost,
 * one it got twice is duplicated, one that does not follow the one before on its connection is
 * out of order. Each room's last offset is what its sender saw of its own messages.
 */
import { framesOf, open, RecoveringClient, Sender } from "./_recovery_parties.ts";

/** What the storm's generator is asked to do. */
export interface StormRequest {
  port: number;
  /** Room names; one sender and `perRoom` recovering clients each. */
  rooms: string[];
  perRoom: number;
  /** Chat messages per second, all senders together, for the whole run. */
  rate: number;
  /** Length of each message's text. */
  messageLength: number;
  /** After the drop, messages keep flowing this long after the last client recovered. */
  afterMs: number;
  /** Longest wait from the drop until every client has recovered. */
  timeoutMs: number;
  /** Longest wait after the senders stop for the last deliveries. */
  drainMs: number;
  /** Clients ask for batched frames (`?batch=1`), as the site's own page does. */
  batch: boolean;
  /** Handshakes in flight at once while connecting (not during the storm). */
  concurrency: number;
}

/** A percentile summary in milliseconds. */
export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

/** What the storm's generator saw. */
export interface StormResult {
  clients: number;
  /** Clients that caught up after the drop within the timeout. */
  recovered: number;
  /** From the drop until each client had every message it missed, over the clients. */
  recoveryMs: Spread;
  /** From the attempt that succeeded until the client had caught up: the server's share. */
  serverMs: Spread;
  /** From the drop until the last client had caught up (NaN if one never did). */
  allRecoveredMs: number;
  /** Handshakes refused or broken during the storm (each retried with backoff). */
  failedAttempts: number;
  /** `recovered` frames with `complete: false`. */
  incomplete: number;
  /** Messages replayed (frames with `"recovered": true`). */
  replayed: number;
  /** Offsets of a client's room after its first position that it never received. */
  lost: number;
  /** Frames of an offset a client had already received. */
  duplicated: number;
  /** Frames whose offset did not follow the previous one on their connection. */
  outOfOrder: number;
  /** Epochs that changed across a reconnect (none should: nothing lost its history). */
  epochChanges: number;
  /** `{"type": "error"}` frames, senders' included. */
  errorFrames: number;
  /** Sockets the server closed (clients or senders). */
  closedByServer: number;
  /** Chat messages sent, and their deliveries to the recovering clients. */
  sent: number;
  deliveries: number;
  /** Senders' own messages that did not come back to them, or came back out of order. */
  senderProblems: number;
  /** How long the senders sent, seconds. */
  sendSeconds: number;
}

/** A line the generator writes. */
export type StormEvent =
  | { event: "flowing"; connectSeconds: number }
  | { event: "recovered"; ms: number }
  | { event: "done"; result: StormResult }
  | { event: "error"; error: string };

function spread(values: number[]): Spread {
  if (values.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs one storm; `emit` writes events, `dropped` resolves when the orchestrator says drop. */
export async function runStorm(
  request: StormRequest,
  emit: (event: StormEvent) => Promise<void>,
  dropped: Promise<void>,
): Promise<StormResult> {
  const base = `ws://127.0.0.1:${request.port}/ws/chat/`;
  const path = (room: number): string => `${base}${encodeURIComponent(request.rooms[room])}/`;
  const batch = request.batch ? "&batch=1" : "";
  let errorFrames = 0, closedByServer = 0, failedAttempts = 0, incomplete = 0, replayed = 0;
  let outOfOrder = 0, duplicated = 0, epochChanges = 0, deliveries = 0, storming = false;
  let pending = 0;
  let allRecovered: () => void = () => {};
  const recoveredAll = new Promise<void>((resolve) => allRecovered = resolve);

  const caughtUp = (client: RecoveringClient): void => {
    if (client.target < 0 || client.last < client.target) return;
    client.target = -1;
    client.recoveredAt = performance.now();
    if (--pending === 0) allRecovered();
  };

  const onFrame = (client: RecoveringClient, frame: Record<string, unknown>): void => {
    if (frame.type === "recovered") {
      const offset = frame.offset as number;
      if (frame.fresh === true) {
        client.epoch = frame.epoch as string;
        client.start = client.last = offset;
        return;
      }
      if (frame.complete !== true) incomplete++;
      if (frame.epoch !== client.epoch) epochChanges++;
      client.epoch = frame.epoch as string;
      client.target = offset;
      caughtUp(client);
      return;
    }
    if (frame.type === "error") {
      errorFrames++;
      return;
    }
    const offset = frame.offset;
    if (typeof offset !== "number" || frame.type !== "chat.message") return;
    if (frame.recovered === true) replayed++;
    if (offset <= client.start) return; // before the client's first position (history)
    deliveries++;
    if (frame.history !== true && offset !== client.last + 1) outOfOrder++;
    if (client.count(offset) > 1) duplicated++;
    if (offset > client.last) client.last = offset;
    if (client.target >= 0) caughtUp(client);
  };

  const attach = (client: RecoveringClient, socket: WebSocket): void => {
    client.socket = socket;
    socket.onmessage = (event) => {
      if (client.socket !== socket) return; // dropped: what was in flight is lost, as on a page
      for (const frame of framesOf(event.data, request.batch)) onFrame(client, frame);
    };
    socket.onclose = () => {
      if (client.socket !== socket) return;
      closedByServer++;
      client.socket = null;
      if (storming) reconnectLater(client);
    };
  };

  const reconnect = async (client: RecoveringClient): Promise<void> => {
    client.attemptAt = performance.now();
    const url = `${path(client.room)}?epoch=${encodeURIComponent(client.epoch)}` +
      `&since=${client.last}${batch}`;
    try {
      attach(client, await open(url));
    } catch {
      failedAttempts++;
      reconnectLater(client);
    }
  };
  const reconnectLater = (client: RecoveringClient): void => {
    setTimeout(() => void reconnect(client), client.backoff.next());
  };

  // Senders first, then the clients, each with `?stream=1`.
  const started = performance.now();
  const senders = request.rooms.map((_, room) => new Sender(room));
  await Promise.all(senders.map(async (sender) => {
    sender.socket = await open(path(sender.room));
    sender.socket.onmessage = (event) => {
      for (const frame of framesOf(event.data, false)) {
        if (frame.type === "error") errorFrames++;
        if (frame.type !== "chat.message" || typeof frame.offset !== "number") continue;
        if (frame.offset !== sender.lastOffset + 1) sender.outOfOrder++;
        sender.lastOffset = Math.max(sender.lastOffset, frame.offset);
        sender.echoes++;
      }
    };
    sender.socket.onclose = () => closedByServer++;
  }));
  const clients: RecoveringClient[] = [];
  for (let room = 0; room < request.rooms.length; room++) {
    for (let i = 0; i < request.perRoom; i++) clients.push(new RecoveringClient(room));
  }
  let next = 0;
  await Promise.all(Array.from({ length: request.concurrency }, async () => {
    while (next < clients.length) {
      const client = clients[next++];
      attach(client, await open(`${path(client.room)}?stream=1${batch}`));
    }
  }));
  // Every client knows its position before a message flows.
  while (clients.some((client) => client.start < 0)) await sleep(20);

  // Senders: each room's at rate / rooms per second, paced by one timer.
  const padding = "x".repeat(Math.max(0, request.messageLength - 16));
  const sendStarted = performance.now();
  let scheduled = 0, sending = true;
  const pace = (async () => {
    while (sending) {
      const due = Math.floor(((performance.now() - sendStarted) * request.rate) / 1000) + 1;
      for (; scheduled < due; scheduled++) {
        const sender = senders[scheduled % senders.length];
        if (sender.socket.readyState !== WebSocket.OPEN) continue;
        sender.socket.send(JSON.stringify({ message: `~S~${sender.sent++}~${padding}` }));
      }
      await sleep(5);
    }
  })();
  await emit({ event: "flowing", connectSeconds: (sendStarted - started) / 1000 });

  // The drop: every client's socket closed at the same moment.
  await dropped;
  const dropAt = performance.now();
  storming = true;
  pending = clients.length;
  for (const client of clients) {
    const socket = client.socket;
    client.socket = null;
    client.dropAt = dropAt;
    client.target = -1;
    socket?.close();
    reconnectLater(client);
  }
  const timedOut = await Promise.race([
    recoveredAll.then(() => false),
    sleep(request.timeoutMs).then(() => true),
  ]);
  const allRecoveredMs = timedOut ? Number.NaN : performance.now() - dropAt;
  await emit({ event: "recovered", ms: allRecoveredMs });
  storming = false;
  await sleep(request.afterMs);
  sending = false;
  await pace;
  const sendSeconds = (performance.now() - sendStarted) / 1000;

  // The last deliveries: every sender has its own messages back, every client its room's last.
  const drainUntil = performance.now() + request.drainMs;
  const drained = (): boolean =>
    senders.every((s) => s.echoes >= s.sent) &&
    clients.every((c) => c.last >= senders[c.room].lastOffset);
  while (!drained() && performance.now() < drainUntil) await sleep(20);

  let lost = 0, senderProblems = 0;
  for (const sender of senders) {
    senderProblems += sender.sent - sender.echoes + sender.outOfOrder;
  }
  for (const client of clients) {
    const end = senders[client.room].lastOffset;
    for (let offset = client.start + 1; offset <= end; offset++) {
      if ((client.counts[offset] ?? 0) === 0) lost++;
    }
  }
  for (const client of clients) client.socket?.close();
  for (const sender of senders) sender.socket.close();
  const recoveredClients = clients.filter((c) => !Number.isNaN(c.recoveredAt));
  return {
    clients: clients.length,
    recovered: recoveredClients.length,
    recoveryMs: spread(recoveredClients.map((c) => c.recoveredAt - c.dropAt)),
    serverMs: spread(recoveredClients.map((c) => c.recoveredAt - c.attemptAt)),
    allRecoveredMs,
    failedAttempts,
    incomplete,
    replayed,
    lost,
    duplicated,
    outOfOrder,
    epochChanges,
    errorFrames,
    closedByServer,
    sent: senders.reduce((sum, s) => sum + s.sent, 0),
    deliveries,
    senderProblems,
    sendSeconds,
  };
}

/**
 * Opens a chat socket on `port`, sends one message to `room` and resolves with the echo's
 * `offset` (undefined when the frame has none): whether the server's chat frames carry offsets.
 */
export async function probeOffset(port: number, room: string): Promise<unknown> {
  const socket = await open(`ws://127.0.0.1:${port}/ws/chat/${encodeURIComponent(room)}/`);
  try {
    const echo = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("No echo of the offset probe")), 10_000);
      socket.onmessage = (event) => {
        const frame = JSON.parse(String(event.data));
        if (frame.type !== "chat.message" && frame.type !== "error") return;
        clearTimeout(timer);
        resolve(frame);
      };
    });
    socket.send(JSON.stringify({ message: "offset probe" }));
    return (await echo).offset;
  } finally {
    socket.close();
  }
}

if (import.meta.main) {
  const encoder = new TextEncoder();
  const emit = (event: StormEvent): Promise<void> =>
    Deno.stdout.write(encoder.encode(JSON.stringify(event) + "\n")).then(() => {});
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  const reader = lines.getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("stdin closed");
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  try {
    const request = JSON.parse(await nextLine()) as StormRequest;
    const dropped = nextLine().then(() => {});
    const result = await runStorm(request, emit, dropped);
    await emit({ event: "done", result });
  } catch (error) {
    await emit({ event: "error", error: (error as Error).stack ?? String(error) });
  }
  Deno.exit(0);
}
