/**
 * `deno task client <room> [--url http://127.0.0.1:8000]`: a terminal chat client. Lines typed
 * on stdin go to the room; what the room says is printed with author and time. Ends cleanly
 * on end of input (Ctrl-D) or Ctrl-C. It shares the browser page's client module
 * (client/channels_client.js): after a lost connection it reconnects with backoff and the
 * server replays what it missed, each message printed once, in order; lines typed meanwhile
 * wait and go out once it is back. A message the server refuses is reported with its reason.
 */
import { STATUS_TEXT, type StatusCode } from "@std/http/status";
import { connectStream, type SendError } from "../client/mod.js";

/** Printed when a reconnect could not bring back everything that was missed. */
export const NOT_RECOVERED = "! Some messages could not be recovered; the latest ones follow";
// How long the end of input waits for the answers to what was just sent.
const DRAIN_MS = 5_000;
// Ids remembered against a server that sends no offsets (it resends its history on reconnect).
const MAX_SEEN = 1_000;
/** Lines typed while disconnected that wait for the connection; more are refused at once. */
export const MAX_QUEUED = 100;
// One waiting line every 60 ms: 16 a second, under the server's default rate limit of 20.
const QUEUE_PACE_MS = 60;

/** What the command line asked for. */
export interface ClientOptions {
  room: string;
  /** The server's base URL, http(s) or ws(s). */
  url: string;
  /** An access token (`deno task token <username>`): the socket is that user's. */
  token?: string;
}

const USAGE = "Usage: deno task client <room> [--url http://127.0.0.1:8000] [--token TOKEN]";

/** Parses `<room> [--url URL] [--token TOKEN]`; throws an `Error` with usage on a mistake. */
export function parseClientArgs(args: string[]): ClientOptions {
  let url = Deno.env.get("CHAT_URL") ?? "http://127.0.0.1:8000";
  // From the environment rather than the command line, a token stays out of `ps`.
  let token = Deno.env.get("CHAT_TOKEN") || undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--url") url = args[++i] ?? "";
    else if (args[i].startsWith("--url=")) url = args[i].slice(6);
    else if (args[i] === "--token") token = args[++i] || undefined;
    else if (args[i].startsWith("--token=")) token = args[i].slice(8) || undefined;
    else rest.push(args[i]);
  }
  if (rest.length !== 1 || rest[0].trim() === "" || url === "") throw new Error(USAGE);
  const parsed = URL.parse(url);
  if (parsed === null || !/^(https?|wss?):$/.test(parsed.protocol)) {
    throw new Error(`--url must be an http(s) or ws(s) URL, not "${url}"\n${USAGE}`);
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

/**
 * One line of output for a frame from the server. What other users wrote is printed with its
 * control characters escaped (`\n`, `\x1b`): raw, a message could clear the screen, set the
 * terminal's title, or start a line that looks like another author's.
 */
export function formatFrame(frame: Record<string, unknown>): string {
  if (frame.type === "error") return `! ${printable(String(frame.error))}`;
  const time = typeof frame.time === "string" ? new Date(frame.time) : new Date();
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}`;
  const author = typeof frame.author === "string" ? frame.author : "?";
  return `[${clock}] ${printable(author)}: ${printable(String(frame.message))}`;
}

// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
const UNPRINTABLE = /[\p{Cc}\u2028\u2029]/gu;
const ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with what a terminal would act on rather than show written as an escape. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.charCodeAt(0);
    return ESCAPES[char] ??
      (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
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
function handshakeWatching(remember: (status: number) => void): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[] | WebSocketOptions) {
      super(url, protocols);
      this.addEventListener("error", (event) => {
        const status = /status code: (\d{3})/.exec((event as ErrorEvent).message ?? "")?.[1];
        if (status !== undefined) remember(Number(status));
      });
    }
  };
}

/**
 * What the first connection's failure says: the handshake's status when the server refused it
 * (the server's log says why), else that nothing answered.
 */
export function connectFailure(options: ClientOptions, status: number | null): string {
  if (status === null) return `Could not connect to room "${options.room}" at ${options.url}`;
  const name = STATUS_TEXT[status as StatusCode];
  const said = name === undefined ? `${status}` : `${status} ${name}`;
  // A 403 does not say why: with a token, the token is the likely cause, not the only one.
  const why = status === 403 && options.token !== undefined
    ? "the token may be expired or revoked; the server's log says why"
    : status === 429
    ? "too many connections from here: close some first"
    : "the server's log says why";
  return `! Connection refused: Handshake status ${said} (${why})`;
}

/** One line about a send that failed; `error` is the `SendError` the stream rejected with. */
export function formatSendError(text: string, error: SendError): string {
  return error.maybeStored
    ? `! Not confirmed (the connection was lost before the server answered): ${text}`
    : `! Not sent (${error.message}): ${text}`;
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
  const queued: string[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let everOpen = false;
  let exitCode = 0;
  let finished = () => {};
  const closed = new Promise<void>((resolve) => finished = resolve);
  let connected = (_ok: boolean) => {};
  const firstConnect = new Promise<boolean>((resolve) => connected = resolve);
  let refusedWith: number | null = null;
  const stream = connectStream(roomSocketUrl(options.url, options.room, options.token), {
    batch: true,
    WebSocket: handshakeWatching((status) => refusedWith = status),
    window: new EventTarget(),
    onMessage: print,
    onFrame(frame) {
      if (frame.type === "error" || typeof frame.message === "string") print(frame);
    },
    onRecovered({ complete, fresh }) {
      if (!complete && !fresh) console.error(NOT_RECOVERED);
    },
    onClose(event) {
      if (event.reason) console.error(`! The server closed the connection: ${event.reason}`);
      // A policy close (a flood, say) must not turn into a quick reconnect loop.
      return event.code === 1008 ? { atLeastAttempts: 3 } : undefined;
    },
    onStateChange(state, text) {
      if (state === "open") {
        console.error(
          everOpen
            ? "Connected again."
            : `Connected to "${options.room}". Type a message and press Enter; Ctrl-D to leave.`,
        );
        everOpen = true;
        connected(true);
        void flushQueue();
      } else if (state === "reconnecting" && !everOpen) {
        console.error(connectFailure(options, refusedWith));
        exitCode = 1;
        connected(false);
        stream.close();
      } else if (state === "reconnecting" && text.startsWith("Connection lost")) {
        console.error(text);
      } else if (state === "closed") {
        connected(false);
        finished();
      }
    },
  });
  function send(line: string): void {
    // Behind what waits: lines go out in the order they were typed.
    if (!stream.isOpen || queued.length > 0) {
      if (queued.length < MAX_QUEUED) return void queued.push(line);
      return console.error(`! Not sent: ${MAX_QUEUED} lines wait for the connection: ${line}`);
    }
    track(sendNow(line));
  }
  function sendNow(line: string): Promise<void> {
    // Only a server that speaks the stream protocol (it sent an epoch) answers with acks.
    return stream.send({ message: line }, { ack: stream.epoch !== null }).then(
      () => {},
      (error: SendError) => console.error(formatSendError(line, error)),
    );
  }
  function track(sending: Promise<void>): void {
    inFlight.add(sending);
    sending.finally(() => inFlight.delete(sending));
  }
  // What was typed while disconnected goes out once the connection is back, paced under the
  // server's rate limit (20 a second): all at once, most would be refused as a flood.
  let flushing: Promise<void> | null = null;
  function flushQueue(): Promise<void> {
    if (flushing !== null || queued.length === 0) return flushing ?? Promise.resolve();
    flushing = (async () => {
      while (queued.length > 0 && stream.isOpen) {
        track(sendNow(queued.shift()!));
        await new Promise((resolve) => setTimeout(resolve, QUEUE_PACE_MS));
      }
    })().finally(() => flushing = null);
    return flushing;
  }
  const stop = () => stream.close(1000);
  Deno.addSignalListener("SIGINT", stop);
  if (!await firstConnect) {
    Deno.removeSignalListener("SIGINT", stop);
    return exitCode;
  }
  const reading = (async () => {
    for await (const line of lines(Deno.stdin.readable)) {
      if (line.trim() !== "") send(line);
    }
    // The answers to the last lines are worth a short wait, and what waits to go out its pace;
    // what never went out is reported.
    const waitMs = DRAIN_MS + queued.length * QUEUE_PACE_MS;
    const drained = (flushing ?? Promise.resolve()).then(() => Promise.all(inFlight));
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, waitMs))]);
    if (queued.length > 0) console.error(`! ${queued.length} message(s) not sent: not connected`);
    stop();
  })();
  await closed;
  Deno.removeSignalListener("SIGINT", stop);
  void reading;
  return exitCode;
}

if (import.meta.main) {
  let options: ClientOptions;
  try {
    options = parseClientArgs(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  Deno.exit(await run(options));
}
