/**
 * A stand-in for the browser's WebSocket, for the client modules in `static/`: the test
 * opens, feeds and closes each socket the client creates, as a server would.
 */

/** One fake socket, as the client sees it and as the test drives it. */
export interface FakeSocket {
  readonly url: string;
  readyState: number;
  /** What the client sent, oldest first. */
  sent: string[];
  /** The code the client closed it with, or `null` while it did not. */
  closedWith: number | null;
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

/** A fake WebSocket class to give the client, and a way to await each socket it creates. */
export function fakeSockets(): {
  WebSocket: typeof WebSocket;
  next(): Promise<FakeSocket>;
  /** Sockets created and not taken by `next` yet. */
  readonly waiting: number;
} {
  const created: FakeSocket[] = [];
  let wake = () => {};
  class Fake implements FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    readyState = 0;
    sent: string[] = [];
    closedWith: number | null = null;
    onopen: (() => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    constructor(readonly url: string) {
      created.push(this);
      wake();
    }
    send(data: string): void {
      this.sent.push(data);
    }
    close(code = 1000): void {
      this.closedWith = code;
      this.readyState = 3;
    }
  }
  return {
    WebSocket: Fake as unknown as typeof WebSocket,
    async next(): Promise<FakeSocket> {
      while (created.length === 0) await new Promise<void>((resolve) => wake = resolve);
      return created.shift()!;
    },
    get waiting() {
      return created.length;
    },
  };
}

/** The server accepts: the socket opens. */
export function open(socket: FakeSocket): void {
  socket.readyState = 1;
  socket.onopen?.();
}

/** The server (or the network) ends the socket with `code` and `reason`. */
export function drop(socket: FakeSocket, code = 1006, reason = ""): void {
  socket.readyState = 3;
  socket.onclose?.({ code, reason });
}
