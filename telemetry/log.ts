/**
 * The process's one logger: access lines like Daphne's, and leveled messages.
 *
 * Its level and its sink are the only global mutable state of the server: the level is set
 * once at start from the configuration (tests lower it to keep their output readable), the
 * sink is the console unless a test captures the lines.
 */

/** Log levels, quietest last. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** Where finished lines go; `level` is the line's own (access lines are `info`). */
export type LogSink = (line: string, level: LogLevel) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };
let threshold = ORDER.info;

const consoleSink: LogSink = (line, level) => {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
};
let sink = consoleSink;

// An access line as written: to the console with its time first, as every other line has, so a
// log file alone places each request among the warnings; a sink set in its place (a test's)
// gets Daphne's bare line.
function access(line: string): void {
  sink(sink === consoleSink ? `${new Date().toISOString()} ${line}` : line, "info");
}
// `[worker-2] ` in a Worker of a pool: every Worker writes the same kinds of lines.
let source = "";

function emit(level: LogLevel, message: string, error?: unknown): void {
  if (ORDER[level] < threshold) return;
  // Anything may be thrown: a plain object is shown as itself, not as "[object Object]".
  const detail = error instanceof Error
    ? `: ${describeError(error)}`
    : error !== undefined
    ? `: threw ${describeThrown(error)}, not an Error`
    : "";
  // The message on one line, whatever it quotes (a room's name, an event's type): its
  // detail, a stack, is the only text that may take several.
  const line = `${new Date().toISOString()} ${level.toUpperCase()} ${source}${oneLine(message)}`;
  sink(`${line}${detail}`, level);
}

/**
 * An Error for a log entry: `Name: message` on one line (a message may quote a client's text,
 * line breaks and all: JSON.parse shows the start of what it read), then the stack's frames.
 * The frames are taken from after the message, so a message cannot add a frame of its own.
 */
function describeError(error: Error): string {
  const stack = error.stack ?? "";
  // The stack starts with the name the error had when made (a subclass sets its own later).
  const at = error.message === "" ? -1 : stack.indexOf(error.message);
  const afterMessage = at >= 0
    ? stack.slice(at + error.message.length)
    : stack.slice(stack.indexOf("\n") + 1 || stack.length);
  const frames = afterMessage.split("\n").filter((line) => /^\s+at /.test(line));
  const head = oneLine(error.message === "" ? error.name : `${error.name}: ${error.message}`);
  return [head, ...frames.map(oneLine)].join("\n");
}

// Keys whose values a log line never shows, in a thrown object (headers, a scope, a form).
const SECRET_KEY = /authorization|cookie|token|secret|password|session/i;
const SHOWN_KEYS = 10;
const SHOWN_CHARACTERS = 500;

/**
 * A value thrown that is not an Error, for one log line: its own keys, ten at most, each
 * nested object by its class alone, values of secret-looking keys hidden, 500 characters at
 * most. Not all of it: an object may hold a request's headers, or twenty thousand keys.
 */
export function describeThrown(value: unknown): string {
  const short = (part: unknown) =>
    typeof part === "object" && part !== null
      ? `[${part.constructor?.name ?? "Object"}]`
      : Deno.inspect(part, { strAbbreviateSize: 100 });
  let text: string;
  if (typeof value !== "object" || value === null) text = short(value);
  else {
    const keys = Object.keys(value);
    const shown = keys.slice(0, SHOWN_KEYS).map((key) =>
      `${key}: ${
        SECRET_KEY.test(key) ? "[hidden]" : short((value as Record<string, unknown>)[key])
      }`
    );
    if (keys.length > SHOWN_KEYS) shown.push(`… ${keys.length - SHOWN_KEYS} more`);
    text = `${value.constructor?.name ?? "Object"} { ${shown.join(", ")} }`;
  }
  text = oneLine(text);
  return text.length > SHOWN_CHARACTERS ? `${text.slice(0, SHOWN_CHARACTERS)}…` : text;
}

/** Formats a client address as `host:port`, bracketing IPv6 hosts. */
export function formatAddr(addr: Deno.Addr | undefined): string {
  if (!addr || !("hostname" in addr)) return "-";
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `${host}:${addr.port}`;
}

/** The process's logger (see the module doc). */
export interface Logger {
  /** Sets the lowest level that is printed. */
  setLevel(level: LogLevel): void;
  /** Whether a line of `level` is printed now. */
  shows(level: Exclude<LogLevel, "silent">): boolean;
  /** Sends lines to `target` instead of the console (tests); `null` restores the console. */
  setSink(target: LogSink | null): void;
  /**
   * Names where this isolate's lines come from (`worker-2` in a Worker of a pool): written as
   * `[worker-2]` before each message but the access lines'; `""` names none.
   */
  setSource(name: string): void;
  /** A debug line. */
  debug(message: string): void;
  /** An info line. */
  info(message: string): void;
  /** A warning, with the error that caused it. */
  warn(message: string, error?: unknown): void;
  /** An error, with the error that caused it. */
  error(message: string, error?: unknown): void;
  /**
   * `HTTP GET /chat/ 200 [0.002, 127.0.0.1:52757]`; a refusal the handler did not explain may
   * say why: `HTTP GET /chat/ 400 [0.000, 127.0.0.1:52758] (the Host header is not a valid host)`.
   */
  http(
    method: string,
    path: string,
    status: number,
    seconds: number,
    client: string,
    reason?: string,
  ): void;
  /** `WebSocket REJECT /ws/presence/ [127.0.0.1:52790] (Login required: …)` */
  websocket(
    stage: "HANDSHAKING" | "CONNECT" | "REJECT" | "DISCONNECT",
    path: string,
    client: string,
    reason?: string,
  ): void;
}

/** The logger. `access` lines are info level. */
export const log: Logger = {
  /** Sets the lowest level that is printed. */
  setLevel(level: LogLevel): void {
    threshold = ORDER[level];
  },
  /** Whether a line of `level` is printed now. */
  shows(level: Exclude<LogLevel, "silent">): boolean {
    return ORDER[level] >= threshold;
  },
  /** Sends lines to `target` instead of the console (tests); `null` restores the console. */
  setSink(target: LogSink | null): void {
    sink = target ?? consoleSink;
  },
  /** Names where this isolate's lines come from; `""` names none. */
  setSource(name: string): void {
    source = name === "" ? "" : `[${oneLine(name)}] `;
  },
  debug: (message: string): void => emit("debug", message),
  info: (message: string): void => emit("info", message),
  warn: (message: string, error?: unknown): void => emit("warn", message, error),
  error: (message: string, error?: unknown): void => emit("error", message, error),
  /**
   * `HTTP GET /chat/ 200 [0.002, 127.0.0.1:52757]`; a refusal the handler did not explain may
   * say why: `HTTP GET /chat/ 400 [0.000, 127.0.0.1:52758] (the Host header is not a valid host)`.
   */
  // Typed by `Logger`'s `http`.
  http(method, path, status, seconds, client, reason) {
    if (threshold > ORDER.info) return;
    const why = reason === undefined ? "" : ` (${oneLine(reason)})`;
    access(
      `HTTP ${method} ${clipped(path)} ${status} [${seconds.toFixed(3)}, ${clipped(client)}]${why}`,
    );
  },
  /**
   * `WebSocket CONNECT /ws/chat/lobby/ [127.0.0.1:52789]`; a refusal says why:
   * `WebSocket REJECT /ws/presence/ [127.0.0.1:52790] (login required)`.
   */
  websocket(
    stage: "HANDSHAKING" | "CONNECT" | "REJECT" | "DISCONNECT",
    path: string,
    client: string,
    reason?: string,
  ): void {
    if (threshold > ORDER.info) return;
    const why = reason === undefined ? "" : ` (${oneLine(reason)})`;
    access(`WebSocket ${stage} ${clipped(path)} [${clipped(client)}]${why}`);
  },
};

/** How many characters of a path (its query too) or a client address a line holds. */
export const PATH_AT_MOST = 500;

// A path or an address, as a line shows it: on one line, and cut with its length said.
function clipped(text: string): string {
  const shown = text.length <= PATH_AT_MOST ? text : `${text.slice(0, PATH_AT_MOST)}…`;
  const line = oneLine(shown);
  return shown === text ? line : `${line} (${text.length} characters)`;
}

// What a client wrote may end up in a reason: every character a reader of the log could take
// for the end of a line (or a terminal for a command) is escaped, so no line can be forged; so
// are the bidirectional controls, which would show the rest of a line reordered.
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const LINE_BREAKING = new RegExp(
  // C0 and C1 controls, the line and paragraph separators, then the bidirectional controls.
  "[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]",
  "g",
);

/** How many characters of a client's text a log line quotes. */
export const QUOTED_AT_MOST = 200;

/**
 * A client's text (a header, say) quoted for a log line or a refusal's reason, cut to
 * {@linkcode QUOTED_AT_MOST} characters with its full length said: a client must not make one
 * request write 60 KB to the log. `null` (no such header) is quoted as `null`.
 */
export function quoteClipped(text: string | null | undefined): string {
  if (text === null || text === undefined) return String(text ?? null);
  if (text.length <= QUOTED_AT_MOST) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, QUOTED_AT_MOST))}… (${text.length} characters)`;
}

/**
 * `text` on one line: control characters, Unicode line separators and bidirectional controls as
 * `\uXXXX`.
 */
export function oneLine(text: string): string {
  return text.replace(
    LINE_BREAKING,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
