/**
 * The reconnect storm's parties (`_recovery_client.ts`): a chat page that recovers, counting
 * what it received by offset, and a room's sender; and how their sockets open and their
 * frames are read.
 */
import { Backoff } from "../client/backoff.js";

// Offsets a client counts before its table grows (doubling).
const INITIAL_SIZE = 1024;

/** Parses one WebSocket message into frames: one JSON object, or one per line when batched. */
export function framesOf(data: unknown, batch: boolean): Record<string, unknown>[] {
  const text = String(data);
  if (!batch || !text.includes("\n")) return [JSON.parse(text)];
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

/** One chat page that recovers: what it received, by offset. */
export class RecoveringClient {
  readonly room: number;
  /** Times each offset was received; index = offset. */
  counts = new Uint8Array(INITIAL_SIZE);
  epoch = "";
  /** Its first position (the room's offset when it first connected); -1 before. */
  start = -1;
  /** The last offset received. */
  last = -1;
  /** The offset to reach to have caught up after a reconnect; -1 when not recovering. */
  target = -1;
  dropAt = 0;
  attemptAt = 0;
  recoveredAt = Number.NaN;
  socket: WebSocket | null = null;
  readonly backoff = new Backoff();

  constructor(room: number) {
    this.room = room;
  }

  count(offset: number): number {
    if (offset >= this.counts.length) {
      const grown = new Uint8Array(Math.max(offset + 1, this.counts.length * 2));
      grown.set(this.counts);
      this.counts = grown;
    }
    if (this.counts[offset] < 255) this.counts[offset]++;
    return this.counts[offset];
  }
}

/** A room's sender: connected from start to end, never dropped. */
export class Sender {
  readonly room: number;
  socket!: WebSocket;
  sent = 0;
  echoes = 0;
  lastOffset = 0;
  outOfOrder = 0;

  constructor(room: number) {
    this.room = room;
  }
}

/** Opens a WebSocket; resolves once open, rejects when the handshake fails. */
export function open(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error(`Handshake to ${url} failed`));
  });
}
