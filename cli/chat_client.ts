/**
 * `deno task client <room> [--url http://127.0.0.1:8000]`: a terminal chat client. Lines typed
 * on stdin go to the room; what the room says is printed with author and time. Ends cleanly
 * on end of input (Ctrl-D) or Ctrl-C. It shares the browser page's client module
 * (client/channels_client.js): after a lost connection it reconnects with backoff and the
 * server replays what it missed, each message printed once, in order; lines typed meanwhile
 * wait and go out once it is back. A message the server refuses is reported with its reason.
 */
import { connectStream, type SendError } from "../client/mod.js";
import { asksForHelp } from "../mod.ts";
import {
  connectFailure,
  formatFrame,
  formatSendError,
  tooLongToSend,
} from "./_chat_client_lines.ts";
import { shownUrl } from "./_shown_url.ts";

export {
  connectFailure,
  DEFAULT_MAX_MESSAGE_BYTES,
  formatFrame,
  formatSendError,
  printable,
  tooLongToSend,
} from "./_chat_client_lines.ts";

/** Printed when a reconnect could not bring back everything that was missed. */
export const NOT_RECOVERED = "! Some messages could not be recovered; the latest ones follow";
// How long the end of input waits for the answers to what was just sent.
const DRAIN_MS = 5_000;
// Ids remembered against a server that sends no offsets (it resends its history on reconnect).
const MAX_SEEN = 1_000;
/** Lines typed while disconnected that wait for the connection; more are refused at once. */
export const MAX_QUEUED = 100;
// One line every 60 ms at most: 16 a second, under the server's default rate limit of 20.
const QUEUE_PACE_MS = 60;
// How long the client waits at first for the server to say where the room stands: longer, it
// takes it for a server without the stream protocol, which sends no acks (and says so).
const FIRST_FRAME_WAIT_MS = 5_000;
// How long the end waits for the server to answer the close (after every frame sent before it).
const CLOSE_WAIT_MS = 2_000;
/** What the command line asked for. */
export interface ClientOptions {
  room: string;
  /** The server's base URL, http(s) or ws(s). */
  url: string;
  /** An access token (`deno task token <username>`): the socket is that user's. */
  token?: string;
}

/** The client's usage, printed by `--help` and with every mistake on the command line. */
export const CLIENT_USAGE =
  "Usage: deno task client <room> [--url http://127.0.0.1:8000] [--token TOKEN]\n" +
  "  Lines read from stdin go to the room, one every 60 ms at most; the room's messages are\n" +
  "  printed. CHAT_URL and CHAT_TOKEN set the URL and the token too. Exit code 0 when every\n" +
  "  line was stored, 1 when one was not or no connection was made, 2 for a usage mistake.";

/** Parses `<room> [--url URL] [--token TOKEN]`; throws an `Error` with usage on a mistake. */
export function parseClientArgs(args: string[]): ClientOptions {
  // Set but empty means the default, as for every setting.
  let url = Deno.env.get("CHAT_URL") || "http://127.0.0.1:8000";
  // From the environment rather than the command line, a token stays out of `ps`.
  let token = Deno.env.get("CHAT_TOKEN") || undefined;
  const rest: string[] = [];
  const valueAfter = (i: number): string => {
    const value = args[i + 1];
    if (value === undefined || value === "" || value.startsWith("--")) {
      throw new Error(`${args[i]} needs a value\n${CLIENT_USAGE}`);
    }
    return value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--url") url = valueAfter(i++);
    else if (arg.startsWith("--url=")) url = arg.slice(6);
    else if (arg === "--token") token = valueAfter(i++);
    else if (arg.startsWith("--token=")) token = arg.slice(8) || undefined;
    else if (arg.startsWith("--")) throw new Error(`Unknown option ${arg}\n${CLIENT_USAGE}`);
    else rest.push(arg);
  }
  if (rest.length > 1) throw new Error(`Unexpected argument "${rest[1]}"\n${CLIENT_USAGE}`);
  if (rest.length !== 1 || rest[0].trim() === "" || url === "") throw new Error(CLIENT_USAGE);
  // "." and ".." are path segments a URL resolves away: /ws/chat/./ is another route.
  if (rest[0] === "." || rest[0] === "..") {
    throw new Error(`No chat room can be named "${rest[0]}"\n${CLIENT_USAGE}`);
  }
  const parsed = URL.parse(url);
  if (parsed === null || !/^(https?|wss?):$/.test(parsed.protocol)) {
    throw new Error(
      `--url must be an http(s) or ws(s) URL, not "${shownUrl(url)}"\n${CLIENT_USAGE}`,
    );
  }
  return token === undefined ? { room: rest[0], url } : { room: rest[0], url, token };
}

/**
 * The WebSocket URL of a room on a server; with a token, as `?token=` (Deno's browser-style
 * WebSocket sends no custom headers; the server's access log shows `token=[redacted]`).
 */
export function roomSocketUrl(base: string, room: string, token?: string): string {
  const url = new URL(base);
  url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
  url.pathname = `/ws/chat/${encodeURIComponent(room)}/`;
  if (token !== undefined) url.searchParams.set("token", token);
  return url.href;
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
    }
  }
  if (buffer !== "") yield buffer;
}

/**
 * Deno's WebSocket, but remembering why its handshake failed: Deno's error event says it
 * ("failed to connect to WebSocket: Invalid status code: 403"), which a browser's never does,
 * so the shared client module does not look.
 */
function handshakeWatching(
  remember: (status: number) => void,
  created: (socket: WebSocket) => void,
): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[] | WebSocketOptions) {
      super(url, protocols);
      created(this);
      this.addEventListener("error", (event) => {
        const status = /status code: (\d{3})/.exec((event as ErrorEvent).message ?? "")?.[1];
        if (status !== undefined) remember(Number(status));
      });
    }
  };
}

async function run(options: ClientOptions): Promise<number> {
  const seen = new Set<string>();
  const print = (frame: Record<string, unknown>) => {
    const id = frame.id;
    if (typeof id === "string" && typeof frame.offset !== "number") {
      if (seen.has(id)) return; // an older server's history, shown already
      seen.add(id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value!);
    }
    console.log(formatFrame(frame));
  };
  // Every line waits here and goes out at the pace, in order: typed while disconnected, or
  // piped in faster than the server's rate limit takes them.
  const queued: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const changes = new Changes();
  let everOpen = false;
  let exitCode = 0;
  let notStored = 0;
  let finished = () => {};
  const closed = new Promise<void>((resolve) => finished = resolve);
  let connected = (_ok: boolean) => {};
  const firstConnect = new Promise<boolean>((resolve) => connected = resolve);
  let refusedWith: number | null = null;
  // Whether the server acks what it stored: one that speaks the stream protocol says where the
  // room stands first (`recovered`); no line goes out before that is known.
  let acks: boolean | null = null;
  let lastSentAt = -Infinity;
  let stopping = false;
  let sockets: WebSocket[] = [];
  // Before the first attempt: a Ctrl-C while it connects is this client's to answer too.
  let interrupted = false;
  let openAtEnd = false;
  const interrupt = () => {
    interrupted = true;
    stop();
  };
  Deno.addSignalListener("SIGINT", interrupt);
  const stream = connectStream(roomSocketUrl(options.url, options.room, options.token), {
    batch: true,
    WebSocket: handshakeWatching(
      (status) => refusedWith = status,
      (socket) => {
        sockets = [socket];
        refusedWith = null; // each attempt's own answer
      },
    ),
    window: new EventTarget(),
    // This client reads each refusal's status itself (`handshakeWatching`).
    probe: false,
    onMessage: print,
    onFrame(frame) {
      if (frame.type === "error" || typeof frame.message === "string") print(frame);
    },
    onRecovered({ complete, fresh }) {
      if (!complete && !fresh) console.error(NOT_RECOVERED);
      acks = true;
      flushQueue();
    },
    onClose(event) {
      if (event.reason) console.error(`! The server closed the connection: ${event.reason}`);
      // Signed out (the token expired or was revoked): a reconnect would be refused, forever.
      if (event.code === 4001) {
        exitCode = 1;
        stopping = true;
        changes.notify();
        return { stop: "signed out" };
      }
      // A policy close (a flood, say) must not turn into a quick reconnect loop.
      return event.code === 1008 ? { atLeastAttempts: 3 } : undefined;
    },
    onStateChange(state, text) {
      changes.notify();
      if (state === "open") {
        console.error(
          everOpen
            ? "Connected again."
            : `Connected to "${options.room}". Type a message and press Enter; Ctrl-D to leave.`,
        );
        everOpen = true;
        connected(true);
        if (acks === null) {
          // No `recovered` in time: a server without the stream protocol, which sends no acks.
          setTimeout(() => {
            if (acks !== null || !stream.isOpen) return;
            acks = false;
            console.error("! The server does not confirm messages: they are sent unconfirmed");
            flushQueue();
          }, FIRST_FRAME_WAIT_MS);
        }
        flushQueue();
      } else if (state === "reconnecting" && (!everOpen || refusedForGood(refusedWith))) {
        // Never connected, or refused in a way no retry mends (a token expired or revoked, a
        // room that no longer exists): said once, and the client ends with 1.
        console.error(connectFailure(options, refusedWith));
        exitCode = 1;
        connected(false);
        if (everOpen) stop();
        else stream.close();
      } else if (state === "reconnecting" && text.startsWith("Connection lost")) {
        console.error(text);
      } else if (state === "closed") {
        connected(false);
        finished();
      }
    },
  });
  function sendNow(line: string): void {
    const sending = stream.send({ message: line }, { ack: acks === true }).then(
      () => {},
      (error: SendError) => {
        notStored++;
        console.error(formatSendError(line, error));
      },
    );
    inFlight.add(sending);
    void sending.finally(() => {
      inFlight.delete(sending);
      changes.notify();
    });
  }
  // Sends what waits, one line every QUEUE_PACE_MS (16 a second, under the server's default
  // limit of 20), while the connection is open and the server's first frame has come.
  let flushing = false;
  function flushQueue(): void {
    if (flushing) return;
    flushing = true;
    void (async () => {
      try {
        while (queued.length > 0 && stream.isOpen && acks !== null) {
          const waitMs = lastSentAt + QUEUE_PACE_MS - performance.now();
          if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
          else {
            lastSentAt = performance.now();
            sendNow(queued.shift()!);
            changes.notify();
          }
        }
      } finally {
        flushing = false;
      }
    })();
  }
  // Takes one line: waits for room behind what is queued, so piped input is read no faster
  // than it goes out, whether connected or not. Typed in a terminal while disconnected, more
  // than MAX_QUEUED are refused at once: the person typing is told rather than left waiting.
  const typed = Deno.stdin.isTerminal();
  async function take(line: string): Promise<void> {
    const tooLong = tooLongToSend(line);
    if (tooLong !== null) {
      notStored++;
      return console.error(tooLong);
    }
    while (queued.length >= MAX_QUEUED && (stream.isOpen || !typed) && !stopping) {
      await changes.next();
    }
    if (stopping) return;
    if (queued.length >= MAX_QUEUED) {
      notStored++;
      return console.error(`! Not sent: ${MAX_QUEUED} lines wait for the connection: ${line}`);
    }
    queued.push(line);
    flushQueue();
  }
  const stop = () => {
    stopping = true;
    changes.notify();
    stream.close(1000);
  };
  if (!await firstConnect) {
    Deno.removeSignalListener("SIGINT", interrupt);
    if (interrupted) console.error("! Interrupted before the connection opened: nothing was sent");
    return interrupted ? 1 : exitCode;
  }
  const reading = (async () => {
    for await (const line of lines(Deno.stdin.readable)) {
      if (stopping) return;
      if (line.trim() !== "") await take(line);
    }
    // What waits goes out at its pace, and the answers to the last lines are worth a short
    // wait, counted while connected: piped input waits for a lost connection however long it
    // is, as while it was read. What never went out is reported.
    const wait = () => performance.now() + DRAIN_MS + queued.length * QUEUE_PACE_MS;
    let deadline = wait();
    while ((queued.length > 0 || inFlight.size > 0) && !stopping) {
      if (!stream.isOpen && !typed) {
        await changes.next();
        deadline = wait();
        continue;
      }
      const leftMs = deadline - performance.now();
      if (leftMs <= 0) break;
      await Promise.race([changes.next(), new Promise((resolve) => setTimeout(resolve, leftMs))]);
    }
    openAtEnd = stream.isOpen;
    stop();
  })();
  await closed;
  Deno.removeSignalListener("SIGINT", interrupt);
  // At the end of the input, or on Ctrl-C: what still waits was never sent.
  if (queued.length > 0) {
    notStored += queued.length;
    const why = interrupted ? "interrupted" : openAtEnd ? "no answer in time" : "not connected";
    console.error(`! ${queued.length} message(s) not sent: ${why}`);
  }
  // The close frame goes out after every frame sent before it: once the server answered it,
  // nothing sent is still in this process (a server without acks relies on it).
  await Promise.race([
    Promise.all(sockets.map(socketClosed)),
    new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS)),
  ]);
  void reading;
  return exitCode !== 0 ? exitCode : notStored > 0 ? 1 : 0;
}

// A handshake refusal a retry would get again: 401, 403, 404 (not 429: a cap frees up).
function refusedForGood(status: number | null): boolean {
  return status === 401 || status === 403 || status === 404;
}

function socketClosed(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => socket.addEventListener("close", () => resolve()));
}

/** Wakes whoever waits for something to change: a line sent or answered, the connection. */
class Changes {
  #waiting: (() => void)[] = [];

  next(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  notify(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const wake of waiting) wake();
  }
}

if (import.meta.main) {
  if (asksForHelp(Deno.args)) {
    console.log(CLIENT_USAGE);
    Deno.exit(0);
  }
  let options: ClientOptions;
  try {
    options = parseClientArgs(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  Deno.exit(await run(options));
}
