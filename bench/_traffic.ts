/**
 * One paced burst of chat traffic inside the load generator: senders send at a fixed total
 * rate, every reading client checks what reaches it. Each message's text carries a marker
 * `~B~run~room~seq~sentAt~`, so a receiver knows whether a message is a duplicate, whether it
 * belongs to its room and, if the client is timed, its latency (sender and receivers share
 * this process's clock).
 *
 * Loss and duplicates are counted exactly, for every client and message. Latency is sampled:
 * only the timed clients (by default 1 in 10 of each room, spread over the room's join order,
 * so over the order the server writes to them) read each frame the moment it arrives; the
 * others read in batches, which costs the generator a third of the CPU.
 */
import { now, type Wire } from "./_frames.ts";
import type { TrafficRequest, TrafficResult } from "./_protocol.ts";
import { Histogram } from "./_histogram.ts";

/** A connected client of the generator. */
export interface BenchClient {
  wire: Wire;
  room: number;
  reading: boolean;
  /**
   * Reads each frame as soon as it arrives and times it. The others read paced (in batches,
   * late by up to a tick): they count and check every frame but do not time them.
   */
  timed: boolean;
  /** Where the marker was in this client's last frame, from the payload's start: a guess. */
  markerAt: number;
}

/** Clients opened together; `listener` sees every text frame any of them receives. */
export interface ClientSet {
  clients: BenchClient[];
  roomCount: number;
  listener:
    | ((client: BenchClient, bytes: Uint8Array, start: number, end: number, at: number) => void)
    | null;
}

const TICK_MS = 2;
const QUIET_MS = 1000;
const HARD_SEND_SLACK_MS = 5000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const TILDE = 0x7e;
const B = 0x42;
const ERROR_PREFIX = new TextEncoder().encode('{"type":"error"');
// One object reused for every frame: the generator checks up to ~300,000 frames a second.
const parsed = { run: 0, room: 0, seq: 0 };

// Where `~B~` ends in `bytes[start, end)`: first at the client's last offset (the JSON around
// the text rarely changes length), then by a scan; -1 if absent.
function findMarker(client: BenchClient, bytes: Uint8Array, start: number, end: number): number {
  const guess = start + client.markerAt;
  if (
    guess + 3 <= end && bytes[guess] === TILDE && bytes[guess + 1] === B &&
    bytes[guess + 2] === TILDE
  ) return guess + 3;
  for (let i = start; i + 3 <= end; i++) {
    if (bytes[i] === TILDE && bytes[i + 1] === B && bytes[i + 2] === TILDE) {
      client.markerAt = i - start;
      return i + 3;
    }
  }
  return -1;
}

// The number `readInt` read last.
let value = 0;

// Reads the whole number at `at` up to the next `~` into `value`; returns the index after
// that `~`.
function readInt(bytes: Uint8Array, at: number, end: number): number {
  value = 0;
  for (; at < end && bytes[at] !== TILDE; at++) value = value * 10 + (bytes[at] - 0x30);
  return at + 1;
}

// Reads `run~room~seq~` at `at` into `parsed`; returns the index of the send time.
function parseMarker(bytes: Uint8Array, at: number, end: number): number {
  at = readInt(bytes, at, end);
  parsed.run = value;
  at = readInt(bytes, at, end);
  parsed.room = value;
  at = readInt(bytes, at, end);
  parsed.seq = value;
  return at;
}

// The send time at `at`: milliseconds with three decimals, `12345.678~`.
function readTime(bytes: Uint8Array, at: number, end: number): number {
  let whole = 0, fraction = 0, scale = 1, point = false;
  for (; at < end && bytes[at] !== TILDE; at++) {
    const c = bytes[at];
    if (c === 0x2e) point = true;
    else if (point) {
      fraction = fraction * 10 + (c - 0x30);
      scale *= 10;
    } else whole = whole * 10 + (c - 0x30);
  }
  return whole + fraction / scale;
}

function startsWith(bytes: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[start + i] !== prefix[i]) return false;
  return true;
}

// The first `perRoom` reading clients of each room, interleaved room by room.
function pickSenders(set: ClientSet, perRoom: number): BenchClient[] {
  const byRoom: BenchClient[][] = Array.from({ length: set.roomCount }, () => []);
  for (const client of set.clients) {
    if (client.reading && byRoom[client.room].length < perRoom) byRoom[client.room].push(client);
  }
  const senders: BenchClient[] = [];
  for (let j = 0; j < perRoom; j++) {
    for (const room of byRoom) if (j < room.length) senders.push(room[j]);
  }
  return senders;
}

/** Runs `request` over `set`; `runId` tells this run's messages from stragglers of others. */
export async function runTraffic(
  set: ClientSet,
  request: TrafficRequest,
  runId: number,
): Promise<TrafficResult> {
  const senders = pickSenders(set, request.sendersPerRoom);
  if (senders.length === 0) throw new Error("No client can send: none is connected");
  const total = Math.round((request.rate * request.durationMs) / 1000);
  const planned = new Int32Array(set.roomCount);
  for (let k = 0; k < total; k++) planned[senders[k % senders.length].room]++;
  const receivers = set.clients.filter((client) => client.reading);
  const seen = new Map<BenchClient, Uint8Array>();
  for (const client of receivers) seen.set(client, new Uint8Array(planned[client.room]));
  const closedBefore = new Set(set.clients.filter((c) => c.wire.closedByServer));

  const histogram = new Histogram();
  let delivered = 0, duplicated = 0, misrouted = 0, errorFrames = 0, lastDelivery = 0;
  set.listener = (client, bytes, start, end, readAt) => {
    const at = findMarker(client, bytes, start, end);
    if (at < 0) {
      if (startsWith(bytes, start, end, ERROR_PREFIX)) errorFrames++;
      return;
    }
    const timeAt = parseMarker(bytes, at, end);
    if (parsed.run !== runId) return;
    if (parsed.room !== client.room) {
      misrouted++;
      return;
    }
    const bits = seen.get(client)!;
    if (bits[parsed.seq] === 1) {
      duplicated++;
      return;
    }
    bits[parsed.seq] = 1;
    delivered++;
    if (readAt > lastDelivery) lastDelivery = readAt;
    if (client.timed) histogram.add(readAt - readTime(bytes, timeAt, end));
  };

  const roomSeq = new Int32Array(set.roomCount);
  const sentTo = new Int32Array(set.roomCount);
  const padding = "x".repeat(Math.max(0, request.messageLength - 48));
  const started = now();
  const hardEnd = started + request.durationMs + HARD_SEND_SLACK_MS;
  // `due` counts scheduled messages; `sent` those a live sender sent (a closed one skips).
  let scheduled = 0, sent = 0, maxSendBacklog = 0;
  while (scheduled < total && now() < hardEnd) {
    const due = Math.min(total, Math.floor(((now() - started) * request.rate) / 1000) + 1);
    const batches = new Map<BenchClient, string[]>();
    for (; scheduled < due; scheduled++) {
      const sender = senders[scheduled % senders.length];
      if (sender.wire.closedByServer) continue;
      const room = sender.room;
      const text = `~B~${runId}~${room}~${roomSeq[room]++}~${now().toFixed(3)}~${padding}`;
      sentTo[room]++;
      sent++;
      let batch = batches.get(sender);
      if (batch === undefined) batches.set(sender, batch = []);
      batch.push(JSON.stringify({ message: text }));
    }
    for (const [sender, texts] of batches) {
      sender.wire.sendText(texts);
      maxSendBacklog = Math.max(maxSendBacklog, sender.wire.backlog);
    }
    await sleep(TICK_MS);
  }
  const sendEnded = now();

  let expected = 0;
  for (const client of receivers) expected += sentTo[client.room];
  let lastProgress = now(), lastCount = delivered;
  while (delivered < expected && now() - sendEnded < request.drainMs) {
    await sleep(20);
    if (delivered !== lastCount) [lastCount, lastProgress] = [delivered, now()];
    else if (now() - lastProgress > QUIET_MS) break;
  }
  set.listener = null;
  const closedNow = set.clients.filter((c) => c.wire.closedByServer && !closedBefore.has(c));
  const closeCodes: Record<string, number> = {};
  for (const { wire } of closedNow) {
    closeCodes[wire.closeCode] = (closeCodes[wire.closeCode] ?? 0) + 1;
  }
  return {
    sent,
    planned: total,
    expected,
    delivered,
    lost: expected - delivered,
    duplicated,
    misrouted,
    errorFrames,
    closedByServer: closedNow.length,
    closeCodes,
    latency: histogram.summary(),
    sendSeconds: (sendEnded - started) / 1000,
    activeSeconds: (Math.max(lastDelivery, sendEnded) - started) / 1000,
    maxSendBacklog,
  };
}
