/**
 * The presence storm's clients: each keeps the set of users its page would show as online,
 * counts what the server sent it, and says when that set first matched what it should be.
 */

/** How a storm client speaks to one kind of server. */
export interface StormProtocol {
  /** WebSocket URL for `user` on the server at `base` (`ws://host:port`). */
  url(base: string, user: string): string;
  /** Handshake headers for `user` (a session cookie, or none). */
  headers(user: string): Record<string, string>;
  /** Updates `online` from one parsed frame. */
  apply(frame: Record<string, unknown>, online: Set<string>): void;
}

/** One simulated page. */
export class StormClient {
  readonly user: string;
  readonly online = new Set<string>();
  frames = 0;
  /** Bytes the server sent: payloads plus WebSocket frame headers. */
  bytes = 0;
  /** Called after every frame. */
  onFrame: (() => void) | null = null;
  #socket: WebSocket;
  #closed: Promise<void>;

  private constructor(user: string, socket: WebSocket, protocol: StormProtocol) {
    this.user = user;
    this.#socket = socket;
    this.#closed = new Promise((resolve) => socket.addEventListener("close", () => resolve()));
    socket.onmessage = (event) => {
      const text = String(event.data);
      this.frames++;
      // Storm usernames are ASCII, so the string length is the UTF-8 payload length.
      this.bytes += text.length + frameHeaderBytes(text.length);
      protocol.apply(JSON.parse(text), this.online);
      this.onFrame?.();
    };
  }

  /** Opens a client; rejects when the handshake fails. */
  static open(base: string, user: string, protocol: StormProtocol): Promise<StormClient> {
    // @ts-ignore: Deno accepts a `headers` option on its WebSocket client
    const socket = new WebSocket(protocol.url(base, user), { headers: protocol.headers(user) });
    const client = new StormClient(user, socket, protocol);
    return new Promise((resolve, reject) => {
      socket.onopen = () => resolve(client);
      socket.onerror = () => reject(new Error(`Handshake for "${user}" failed`));
    });
  }

  /** Closes and resolves once the close handshake is over (the server has seen it). */
  async close(): Promise<void> {
    if (this.#socket.readyState < WebSocket.CLOSING) this.#socket.close(1000);
    await this.#closed;
  }
}

/**
 * Resolves with the moment (`performance.now()`) from which `done` held for every client, or
 * with NaN after `timeoutMs`.
 */
export function convergence(
  clients: StormClient[],
  done: (client: StormClient) => boolean,
  timeoutMs: number,
): Promise<number> {
  const since = new Map<StormClient, number>();
  return new Promise((resolve) => {
    const finish = (value: number) => {
      clearTimeout(timer);
      for (const client of clients) client.onFrame = null;
      resolve(value);
    };
    const check = (client: StormClient) => {
      if (!done(client)) since.delete(client);
      else if (!since.has(client)) since.set(client, performance.now());
      if (since.size === clients.length) finish(Math.max(...since.values()));
    };
    const timer = setTimeout(() => finish(Number.NaN), timeoutMs);
    for (const client of clients) client.onFrame = () => check(client);
    for (const client of clients) check(client);
  });
}

/** Starts `count` tasks spread evenly over `spreadMs`; resolves with their results. */
export function spread<T>(count: number, spreadMs: number, task: (i: number) => Promise<T>) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      new Promise<T>((resolve, reject) => {
        setTimeout(() => task(i).then(resolve, reject), (i * spreadMs) / count);
      })),
  );
}

function frameHeaderBytes(payload: number): number {
  return payload <= 125 ? 2 : payload <= 65_535 ? 4 : 10;
}
