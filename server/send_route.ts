/**
 * The send endpoint: sends one event to a group or a channel from outside the server, the way
 * Channels code calls `group_send` or `send` from a view or a job. It is how a cron job or an
 * admin script reaches an app whose layer lives in the server (`LAYER=memory`, `--workers`);
 * with Redis, `publishFromOutside` and `appendFromOutside` reach the layer directly.
 *
 * The request carries `Authorization: Bearer <SEND_TOKEN>` and a JSON body
 * `{"group": "chat.lobby", "event": {"type": "chat.message", ...}}`, or
 * `{"channel": "dice", "event": {...}}` for a named channel (a worker's queue) or one
 * connection's channel. The answer is the counted result, e.g. `{"delivered": 1, "dropped": 0,
 * "remoteProcesses": 0}`; `"noListener": true` says nobody listens on that channel. Without the
 * header the answer is 401, with a wrong token 401 too (`error="invalid_token"`). The route is
 * not in the table at all (404) when no token is configured.
 *
 * An app decides what of it goes into a group's stream (`outside`): such an event gets an offset
 * (the answer carries `offset` and `epoch`), and clients that reconnect recover it.
 */
import {
  isNamedChannel,
  type LayerEvent,
  validateEvent,
  validateGroupName,
  validateNamedChannel,
} from "../layers/layer.ts";
import { CLOSE_EVENT } from "./_connection_constants.ts";
import { isSendableCloseCode } from "./close_codes.ts";
import { PublishUnconfirmedError, type StreamRetention } from "../layers/streams/contract.ts";
import type { Config } from "./config.ts";
import type { Handler, Services } from "./context.ts";
import { log } from "../telemetry/log.ts";
import { logReason } from "./log_reason.ts";
import { BodyNotUtf8Error, readBodyText } from "./request_body.ts";
import { type AppRoute, page } from "./routes.ts";
import { decodeUnreserved } from "./router.ts";
import { sameSecret, warnRefusedToken } from "./_bearer.ts";
import { bearerToken } from "../auth/tokens.ts";

/** The path of the endpoint unless another is given. */
export const SEND_PATH = "/_send/";

/** How an app takes an event sent from outside to one of its groups. */
export interface OutsideSend {
  /** The group it goes to, when the app names it otherwise (default: the one asked for). */
  group?: string;
  /** Put into the group's stream as this event (it gets an offset), not sent as it came. */
  stream?: LayerEvent;
  /** That publish's retention (default: the streams' own). */
  retention?: StreamRetention;
}

/**
 * What an app does with an event sent from outside to `group`: `null` sends it as it came; an
 * {@linkcode OutsideSend} renames the group or puts the event into its stream; `refused` says
 * why it is not taken (400).
 */
export type OutsideSendRule = (
  group: string,
  event: LayerEvent,
  services: Services,
) => OutsideSend | { refused: string } | null;

/** The send endpoint's options. */
export interface SendRouteOptions {
  /** Where it answers (default `/_send/`). */
  path?: string;
  /** What goes into a stream, or to another group (default: everything is sent as it came). */
  outside?: OutsideSendRule;
}

/**
 * The send endpoint's route, only when `config.sendToken` (`SEND_TOKEN`) is set: none
 * otherwise, so that no one can send as the server by accident.
 *
 * @example
 * ```ts
 * import { type AppRoute, type Config, sendRoutes } from "@channels/deno";
 * function routes(config: Config): AppRoute[] {
 *   // A poll's votes sent by a job go into the poll's stream, so reconnecting clients get them.
 *   return sendRoutes(config, {
 *     outside: (group, event) => group.startsWith("poll.") ? { stream: event } : null,
 *   });
 * }
 * ```
 */
export function sendRoutes(config: Config, options: SendRouteOptions = {}): AppRoute[] {
  if (config.sendToken === "") return [];
  return [page("POST", options.path ?? SEND_PATH, sendHandler(options))];
}

/** The send endpoint's handler (see {@linkcode sendRoutes}), for an app's own route table. */
export function sendHandler(options: SendRouteOptions = {}): Handler {
  return async (request, context) => {
    const { services } = context;
    const refused = await refusedToken(request, services.config.sendToken, context);
    if (refused !== null) return refused;
    const body = await readBody(request, services.config.maxMessageBytes);
    if ("error" in body) return json(body.status ?? 400, { error: body.error });
    if ("channel" in body) return await sendToChannel(services, body, context.url.pathname);
    try {
      validateGroupName(body.group);
      validateEvent(body.event);
      validateCloseEvent(body.event);
    } catch (error) {
      return json(400, { error: (error as Error).message });
    }
    // Named in a failure's warning as the group it went to (the app's rule may rename it).
    let group = body.group;
    try {
      const taken = options.outside?.(body.group, body.event, services) ?? null;
      if (taken !== null && "refused" in taken) return json(400, { error: taken.refused });
      group = taken?.group ?? body.group;
      if (taken?.stream !== undefined) {
        const retention = taken.retention === undefined ? {} : { retention: taken.retention };
        return json(200, await services.streams.publish(group, taken.stream, retention));
      }
      return json(200, await services.layer.groupSend(group, body.event));
    } catch (error) {
      return failed(`${context.url.pathname} to "${group}"`, error);
    }
  };
}

async function refusedToken(
  request: Request,
  expected: string,
  context: { url: URL; client: string; services: Services },
): Promise<Response | null> {
  const given = bearerToken(request);
  if (given === null) {
    return json(401, { error: "Authorization: Bearer <SEND_TOKEN> is required" }, {
      "www-authenticate": 'Bearer realm="send"',
    });
  }
  if (expected === "" || !await sameSecret(given, expected)) {
    // By the path as routed: each spelling of it (`/%5Fsend/`) would warn once a minute of its own.
    warnRefusedToken(context.services, decodeUnreserved(context.url.pathname), context.client);
    // RFC 6750 §3.1: a token that is not valid is 401 too, and the challenge says so.
    return json(401, { error: "The token is not valid" }, {
      "www-authenticate": 'Bearer realm="send", error="invalid_token"',
    });
  }
  return null;
}

// What the layer refused with a `TypeError` is the request's fault (a name Channels does not
// take, an event that is not plain data): 400, not to be retried. Anything else is the
// server's or its storage's: 503.
// `target`: where the send went, as its warning names it (`/_send/ to "chat.lobby"`).
function failed(target: string, error: unknown): Response {
  const message = (error as Error).message;
  if (error instanceof TypeError) return json(400, { error: message });
  log.warn(`${target} failed`, error);
  if (error instanceof PublishUnconfirmedError) {
    // Stored or not, nobody knows: a retry may store it twice.
    // `reason` alone, for a client that says "not confirmed" in words of its own.
    return json(503, { error: `Not confirmed: ${message}`, unconfirmed: true, reason: message });
  }
  return json(503, { error: `Not sent: ${message}` });
}

/** A `connection.close` event's code, when it has one, must be one a close frame may carry. */
function validateCloseEvent(event: LayerEvent): void {
  if (event.type !== CLOSE_EVENT || event.code === undefined) return;
  if (typeof event.code !== "number" || !isSendableCloseCode(event.code)) {
    throw new TypeError(
      `A ${CLOSE_EVENT} event's "code" must be 1000-1003, 1007-1014 or 3000-4999`,
    );
  }
  if (event.reason !== undefined && typeof event.reason !== "string") {
    throw new TypeError(`A ${CLOSE_EVENT} event's "reason" must be a string`);
  }
}

async function sendToChannel(
  services: Services,
  body: { channel: string; event: LayerEvent },
  path: string,
): Promise<Response> {
  try {
    if (isNamedChannel(body.channel)) validateNamedChannel(body.channel);
    else if (body.channel.length > 200) throw new TypeError("Channel name is too long");
    validateEvent(body.event);
    validateCloseEvent(body.event);
  } catch (error) {
    return json(400, { error: (error as Error).message });
  }
  try {
    return json(200, await services.layer.send(body.channel, body.event));
  } catch (error) {
    return failed(`${path} to channel "${body.channel}"`, error);
  }
}

async function readBody(
  request: Request,
  limit: number,
): Promise<
  { group: string; event: LayerEvent } | { channel: string; event: LayerEvent } | {
    error: string;
    /** 413 for a body over the bound (else 400). */
    status?: 413;
  }
> {
  let text;
  try {
    // JSON must be UTF-8 (RFC 8259): a Latin-1 "café" is refused, not stored as "caf\uFFFD".
    text = await readBodyText(request, limit, { fatal: true });
  } catch (error) {
    if (error instanceof BodyNotUtf8Error) return { error: `${error.message}: JSON must be` };
    throw error;
  }
  if (text === null) return { error: `The body is over ${limit} bytes`, status: 413 };
  let value: { group?: unknown; channel?: unknown; event?: unknown };
  try {
    value = JSON.parse(text);
  } catch {
    return {
      error: 'The body must be JSON like {"group": "chat.lobby", "event": {"type": "..."}}',
    };
  }
  // Both named: which one was meant is not guessed (it went to the group, and the channel never
  // heard of it).
  // `null` is no name (a Python sender that fills every key writes None).
  if (value?.channel === null) delete value.channel;
  if (value?.group === null) delete value.group;
  if (value?.group !== undefined && value?.channel !== undefined) {
    return { error: 'The body names a "group" and a "channel": send to one of them' };
  }
  if (typeof value?.channel === "string") {
    return { channel: value.channel, event: value.event as LayerEvent };
  }
  if (typeof value?.group !== "string") {
    return { error: 'The body needs a string "group" or a string "channel"' };
  }
  return { group: value.group, event: value.event as LayerEvent };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const response = new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
  // A refusal's access line says why, as the client is told (tokens are never in it).
  const error = (body as { error?: unknown }).error;
  return status >= 400 && typeof error === "string" ? logReason(response, error) : response;
}
