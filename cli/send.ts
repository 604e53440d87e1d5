/**
 * `deno task send [--room] <group-or-room> <json-or-text>`: sends one event to a group, the
 * way Channels code calls `group_send` from a view or a job.
 * `deno task send --channel <name> <json>`: sends one event to a channel, as Channels' `send`:
 * a named channel (a background worker's, e.g. `dice`) or one connection's channel. It prints
 * the counted result, and exits with 1 when nobody listens on the channel or it is full, or the
 * send was not made; with 3 when it may have been (not confirmed: do not send it again).
 *
 * - With `LAYER=redis` it publishes straight to Redis (`REDIS_URL`, `REDIS_PREFIX`).
 * - Otherwise the layer lives inside the running server, so it posts to the server's
 *   `POST /_send/` with `SEND_TOKEN` (`--url` names the server, default `http://HOST:PORT`).
 *
 * A target with a dot is a group (`chat.lobby`); one without, or any target after `--room`,
 * is a chat room; any target after `--group` is a group, as named (Django's `user_42`). For a room, a JSON object without `type`, or plain text, becomes a chat
 * message: `deno task send lobby '{"message":"Deploy done","author":"ci"}'`. A chat message to
 * a room goes into the room's stream (with Redis, straight into it; otherwise the server's
 * `/_send/` puts it there), so it gets an offset and reconnecting clients recover it.
 */
import {
  appendFromOutside,
  asksForHelp,
  channelSendFromOutside,
  type Config,
  configFlags,
  isChannelsCompatible,
  isNamedChannel,
  type LayerEvent,
  loadConfig,
  publishFromOutside,
  PublishUnconfirmedError,
  secretsOnCommandLine,
  type SendResult,
  validateEvent,
  validateGroupName,
  validateNamedChannel,
} from "../mod.ts";
import {
  canonicalGroup,
  chatGroup,
  chatNaming,
  isValidRoomName,
  MAX_ROOM_NAME,
  roomNameOf,
  storedFromOutside,
} from "../consumers/chat_rooms.ts";
import { shownUrl } from "./_shown_url.ts";

/** What the command line asked for. */
export interface SendRequest {
  /** The group to send to; absent with `--channel`. */
  group?: string;
  /** The channel to send to (`--channel dice`): a named channel or a connection's. */
  channel?: string;
  /** The chat room the target named, whose group depends on the layer. */
  room?: string;
  event: LayerEvent;
  /** The server for the HTTP route; default from HOST and PORT. */
  url?: string;
  token?: string;
  /** Flags left for the configuration (`--layer`, `--redis-url`, ...). */
  configArgs: string[];
}

const USAGE = "Usage: deno task send [--room | --group] <group-or-room> <json-or-text> " +
  "[--url http://127.0.0.1:8000] [--token TOKEN]\n" +
  "       deno task send --channel <channel> <json> [--url ...] [--token TOKEN]";

/** Parses the command line; throws an `Error` with the usage or the problem. */
export function parseSendArgs(args: string[]): SendRequest {
  const positional: string[] = [];
  const configArgs: string[] = [];
  let room = false;
  let group = false;
  let channel: string | undefined;
  let url: string | undefined;
  let token: string | undefined;
  // `--channel --url X` must not read `--url` as the channel's name.
  const valueAfter = (i: number): string => {
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) {
      throw new Error(`${args[i]} needs a value\n${USAGE}`);
    }
    return value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--room") room = true;
    else if (arg === "--group") group = true;
    else if (arg === "--channel") channel = valueAfter(i++);
    else if (arg.startsWith("--channel=")) channel = arg.slice(10);
    else if (arg === "--url") url = valueAfter(i++);
    else if (arg.startsWith("--url=")) url = arg.slice(6);
    else if (arg === "--token") token = valueAfter(i++);
    else if (arg.startsWith("--token=")) token = arg.slice(8);
    else if (arg.startsWith("--")) {
      // Said before it takes the next word as its value and leaves the count to fail bare.
      if (!configFlags().includes(arg.split("=")[0])) {
        throw new Error(`Unknown option ${arg.split("=")[0]}\n${USAGE}`);
      }
      configArgs.push(arg);
      if (!arg.includes("=") && i + 1 < args.length && !args[i + 1].startsWith("--")) {
        configArgs.push(args[++i]);
      }
    } else positional.push(arg);
  }
  // A URL that cannot be parsed is a usage mistake, said without the password it may hold.
  if (url !== undefined && !/^https?:$/.test(URL.parse(url)?.protocol ?? "")) {
    throw new Error(`--url must be an http(s) URL, not "${shownUrl(url)}"\n${USAGE}`);
  }
  if (channel !== undefined) {
    tooMany(positional, 1);
    if (positional.length !== 1 || channel === "" || room || group) throw new Error(USAGE);
    if (isNamedChannel(channel)) validateNamedChannel(channel);
    return { channel, event: eventFrom(positional[0], false), url, token, configArgs };
  }
  tooMany(positional, 2);
  if (positional.length !== 2 || positional[0] === "") throw new Error(USAGE);
  if (room && group) throw new Error(`--room and --group name the target twice\n${USAGE}`);
  const [target, payload] = positional;
  // A group's own name may have no dot: Django's `user_42`, the tutorial's `chat_lobby`.
  const isRoom = !group && (room || !target.includes("."));
  // Judged as the room's sockets name it: composed (a long name typed decomposed fits).
  if (isRoom && !isValidRoomName(roomNameOf(target))) {
    throw new Error(
      `No chat room can be named ${JSON.stringify(target)}: 1 to ${MAX_ROOM_NAME} characters, ` +
        'no control characters or spaces around it, not "." or "..", well-formed Unicode',
    );
  }
  const groupName = isRoom ? chatGroup(target) : target;
  validateGroupName(groupName);
  const named = isRoom ? { room: target } : {};
  return { group: groupName, ...named, event: eventFrom(payload, isRoom), url, token, configArgs };
}

// The first argument past the `expected` ones, named with the usage.
function tooMany(positional: string[], expected: number): void {
  if (positional.length > expected) {
    throw new Error(`Unexpected argument "${positional[expected]}"\n${USAGE}`);
  }
}

/** The event a payload stands for; for a room, plain text or a bare message is a chat message. */
export function eventFrom(payload: string, isRoom: boolean): LayerEvent {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    if (!isRoom) throw new Error(`The event must be JSON, got: ${payload.slice(0, 60)}`);
    value = payload;
  }
  if (isRoom && typeof value === "string") {
    return { type: "chat.message", message: { message: value } };
  }
  // A number, `true`, `null` or an array is text that happens to parse: sent as typed.
  if (isRoom && (typeof value !== "object" || value === null || Array.isArray(value))) {
    return { type: "chat.message", message: { message: payload } };
  }
  const object = value as Record<string, unknown> | null;
  if (isRoom && typeof object === "object" && object !== null && !("type" in object)) {
    return { type: "chat.message", message: object };
  }
  try {
    validateEvent(object as LayerEvent);
  } catch {
    throw new Error('The event must be a JSON object with a string "type"');
  }
  return object as LayerEvent;
}

/** Posts to the running server's `/_send/`; returns its JSON answer. */
async function sendViaServer(
  config: Config,
  request: SendRequest,
): Promise<SendResult & { offset?: number; epoch?: string }> {
  const token = request.token ?? config.sendToken;
  if (!token) {
    throw new Error("SEND_TOKEN is not set: the server's /_send/ endpoint needs the same token");
  }
  const base = request.url ?? `http://${hostForUrl(config.host)}:${config.port}`;
  const url = new URL("/_send/", base); // `--url` was checked with the command line
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(
        request.channel === undefined
          ? { group: request.group, event: request.event }
          : { channel: request.channel, event: request.event },
      ),
    });
  } catch (error) {
    throw new Error(`No server answers at ${shownUrl(base)}: ${(error as Error).message}`);
  }
  const text = await response.text();
  if (response.status === 404) {
    throw new Error(`${shownUrl(url.href)} is off: start the server with the same SEND_TOKEN`);
  }
  if (!response.ok) {
    const answer = safeJson(text);
    const reason = answer?.error ?? text.slice(0, 200);
    // Maybe stored: sent again, it could be stored twice.
    if (answer?.unconfirmed === true) {
      // A server before 0.20 gave the cause only after its "Not confirmed: ".
      const cause = answer.reason ?? String(reason).replace(/^Not confirmed: /, "");
      throw new PublishUnconfirmedError(cause);
    }
    throw new Error(`The server refused (${response.status}): ${reason}`);
  }
  return JSON.parse(text);
}

/**
 * What a send through `/_send/` reached. The server counts the connections of the process (or
 * Worker, with `--workers`) that took the request, and the other ones it went on to.
 */
export function sentSummary(
  group: string,
  result: SendResult & { offset?: number; epoch?: string },
): string {
  const elsewhere = result.remoteProcesses > 0
    ? `, and went on to ${result.remoteProcesses} other Worker(s) or process(es)`
    : "";
  const dropped = result.dropped ? `, ${result.dropped} dropped (receivers over capacity)` : "";
  // A chat message to a room is stored in its stream: the server's answer says where.
  const stored = typeof result.offset === "number"
    ? `: offset ${result.offset} (epoch ${result.epoch})`
    : "";
  return `Sent to "${group}"${stored}: delivered to ${result.delivered} connection(s) here` +
    dropped + elsewhere;
}

// What a send straight to Redis counts: the processes subscribed to the group, or under
// channels_redis (where nothing subscribes) the process inboxes written, Django's among them.
function reachedWord(config: Config): string {
  return config.layer === "channels_redis" ? "process inbox(es) written" : "process(es) subscribed";
}

/** The host of `HOST` as a URL writes it, one that reaches the server from this machine. */
export function hostForUrl(host: string): string {
  // HOST may be given with the brackets of a URL (`[::1]`), as the server accepts it.
  const plain = host.replace(/^\[(.*)\]$/, "$1");
  if (plain === "0.0.0.0") return "127.0.0.1";
  if (plain === "::") return "[::1]";
  return plain.includes(":") ? `[${plain}]` : plain;
}

function safeJson(text: string): { error?: string; unconfirmed?: boolean; reason?: string } | null {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Sends to one channel and prints the counted result; 1 when nobody got it. */
async function sendToChannel(
  config: Config,
  request: SendRequest,
  channel: string,
): Promise<number> {
  try {
    const result = await channelSendFromOutside(config, channel, request.event) ??
      await sendViaServer(config, request);
    if (result.queued) {
      // Not an error to retry: a worker that starts in time (a Django runworker) still takes it.
      console.log(`Queued on channel "${channel}": nobody listens now; it waits for a worker`);
      return 0;
    }
    if (result.noListener) {
      console.error(`Not delivered: nobody listens on channel "${channel}"`);
      return 1;
    }
    if (result.dropped > 0) {
      console.error(`Not delivered: channel "${channel}" is full (its listener is behind)`);
      return 1;
    }
    const where = result.delivered > 0
      ? `taken by ${result.delivered} listener(s) in the server`
      : `handed to ${result.remoteProcesses} queue or process(es)`;
    console.log(`Sent to channel "${channel}": ${where}`);
    return 0;
  } catch (error) {
    return notSent(error);
  }
}

async function main(args: string[]): Promise<number> {
  if (asksForHelp(args)) {
    console.log(USAGE);
    return 0;
  }
  let request: SendRequest;
  let config: Config;
  try {
    request = parseSendArgs(args);
    config = loadConfig(request.configArgs, Deno.env.toObject());
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  for (const warning of secretsOnCommandLine(request.configArgs)) console.error(warning);
  if (request.channel !== undefined) return await sendToChannel(config, request, request.channel);
  // Under LAYER=channels_redis a room's group is the Channels tutorial's `chat_<room>`.
  const naming = chatNaming({ channelsCompatible: isChannelsCompatible(config) });
  const group = request.room === undefined
    ? canonicalGroup(naming, request.group!)
    : naming.group(request.room);
  request = { ...request, group };
  try {
    const stored = storedFromOutside(naming, group, request.event);
    if (stored !== null && "refused" in stored) {
      console.error(stored.refused);
      return 2;
    }
    if (stored !== null) {
      const retention = config.historyWindow;
      const appended = await appendFromOutside(config, group, stored.message, { retention });
      if (appended !== null) {
        console.log(
          `Sent to "${group}" via Redis: offset ${appended.offset} ` +
            `(epoch ${appended.epoch}), ${appended.remoteProcesses} ${reachedWord(config)}`,
        );
        return 0;
      }
    }
    const processes = await publishFromOutside(config, group, request.event);
    if (processes !== null) {
      console.log(`Sent to "${group}" via Redis: ${processes} ${reachedWord(config)}`);
    } else {
      console.log(sentSummary(group, await sendViaServer(config, request)));
    }
    return 0;
  } catch (error) {
    return notSent(error);
  }
}

/**
 * Exit code 1 for a send that was not made; 3 for one that may have been (stored, or written
 * to Redis, with no answer): a script must not send it again, or it may be there twice.
 */
function notSent(error: unknown): number {
  if (error instanceof PublishUnconfirmedError) {
    console.error(`Not confirmed (do not send it again): ${error.message}`);
    return 3;
  }
  console.error(`Not sent: ${(error as Error).message}`);
  return 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
