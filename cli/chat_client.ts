/**
 * `deno task client <room> [--url http://127.0.0.1:8000]`: a terminal chat client. Lines typed
 * on stdin go to the room; what the room says is printed with author and time. Ends cleanly
 * on end of input (Ctrl-D) or Ctrl-C. Same wire protocol as the browser page.
 */

/** What the command line asked for. */
export interface ClientOptions {
  room: string;
  /** The server's base URL, http(s) or ws(s). */
  url: string;
}

/** Parses `<room> [--url URL]`; throws an `Error` with usage on a mistake. */
export function parseClientArgs(args: string[]): ClientOptions {
  let url = Deno.env.get("CHAT_URL") ?? "http://127.0.0.1:8000";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--url") url = args[++i] ?? "";
    else if (args[i].startsWith("--url=")) url = args[i].slice(6);
    else rest.push(args[i]);
  }
  if (rest.length !== 1 || rest[0].trim() === "" || url === "") {
    throw new Error("Usage: deno task client <room> [--url http://127.0.0.1:8000]");
  }
  return { room: rest[0], url };
}

/** The WebSocket URL of a room on a server. */
export function roomSocketUrl(base: string, room: string): string {
  const url = new URL(base);
  url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
  url.pathname = `/ws/chat/${encodeURIComponent(room)}/`;
  return url.href;
}

/** One line of output for a frame from the server. */
export function formatFrame(frame: Record<string, unknown>): string {
  if (frame.type === "error") return `! ${frame.error}`;
  const time = typeof frame.time === "string" ? new Date(frame.time) : new Date();
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}`;
  const author = typeof frame.author === "string" ? frame.author : "?";
  return `[${clock}] ${author}: ${frame.message}`;
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

async function run(options: ClientOptions): Promise<number> {
  const socket = new WebSocket(roomSocketUrl(options.url, options.room));
  const opened = new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true);
    socket.onerror = () => resolve(false);
  });
  const closed = new Promise<CloseEvent>((resolve) => socket.addEventListener("close", resolve));
  socket.onmessage = (event) => console.log(formatFrame(JSON.parse(event.data)));
  if (!await opened) {
    console.error(`Could not connect to room "${options.room}" at ${options.url}`);
    return 1;
  }
  console.error(`Connected to "${options.room}". Type a message and press Enter; Ctrl-D to leave.`);
  const stop = () => socket.close(1000);
  Deno.addSignalListener("SIGINT", stop);
  const reading = (async () => {
    for await (const line of lines(Deno.stdin.readable)) {
      if (line.trim() !== "" && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ message: line }));
      }
    }
    stop();
  })();
  const event = await closed;
  Deno.removeSignalListener("SIGINT", stop);
  if (event.code !== 1000) console.error(`Disconnected: ${event.code} ${event.reason}`.trim());
  void reading;
  return event.code === 1000 ? 0 : 1;
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
