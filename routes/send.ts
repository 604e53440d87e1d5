/**
 * `POST /_send/`: sends one event to a group or a channel from outside the server, the way
 * Channels code calls `group_send` or `send` from a view or a job. `deno task send` uses it
 * when the layer is in this process; with Redis it publishes directly.
 *
 * The request carries `Authorization: Bearer <SEND_TOKEN>` and a JSON body
 * `{"group": "chat.lobby", "event": {"type": "chat.message", ...}}`, or
 * `{"channel": "dice", "event": {...}}` for a named channel (a worker's queue) or one
 * connection's channel. The answer is the counted result, e.g. `{"delivered": 1, "dropped": 0,
 * "remoteProcesses": 0}`; `"noListener": true` says nobody listens on that channel. Without
 * the header the answer is 401, with a wrong token 401 too (`error="invalid_token"`). The route is not in the table at all
 * (404) when no token is configured.
 *
 * A `chat.message` to a chat room's group goes into the room's stream, completed as the chat
 * consumer completes messages from outside: it gets an offset (the answer carries `offset` and
 * `epoch`) and clients that reconnect recover it.
 */
import {
  type AppRoute,
  CLOSE_EVENT,
  type Config,
  type GroupLayer,
  type Handler,
  isNamedChannel,
  isSendableCloseCode,
  type LayerEvent,
  log,
  logReason,
  page,
  PublishUnconfirmedError,
  readBodyText,
  validateEvent,
  validateGroupName,
  validateNamedChannel,
} from "../mod.ts";
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";
import { canonicalGroup, chatNaming, storedFromOutside } from "../consumers/chat_rooms.ts";

/** The path of the endpoint. */
export const SEND_PATH = "/_send/";

/** `POST /_send/`. */
export const sendEvent: Handler = async (request, context) => {
  const { config, layer } = context.services;
  const given = bearerToken(request);
  if (given === null) {
    return json(401, { error: "Authorization: Bearer <SEND_TOKEN> is required" }, {
      "www-authenticate": 'Bearer realm="send"',
    });
  }
  if (config.sendToken === "" || !await sameSecret(given, config.sendToken)) {
    // RFC 6750 §3.1: a token that is not valid is 401 too, and the challenge says so.
    return json(401, { error: "The token is not valid" }, {
      "www-authenticate": 'Bearer realm="send", error="invalid_token"',
    });
  }
  const body = await readBody(request, config.maxMessageBytes);
  if ("error" in body) return json(body.status ?? 400, { error: body.error });
  if ("channel" in body) return await sendToChannel(context.services.layer, body);
  try {
    validateGroupName(body.group);
    validateEvent(body.event);
    validateCloseEvent(body.event);
  } catch (error) {
    return json(400, { error: (error as Error).message });
  }
  // A room's group written otherwise (its name in decomposed Unicode) is the room's.
  const naming = chatNaming(layer);
  body.group = canonicalGroup(naming, body.group);
  try {
    // A chat message to a room goes into the room's stream: it gets an offset and is kept.
    const stored = storedFromOutside(naming, body.group, body.event);
    if (stored !== null && "refused" in stored) return json(400, { error: stored.refused });
    if (stored !== null) {
      const retention = config.historyWindow;
      return json(
        200,
        await context.services.streams.publish(body.group, stored.message, { retention }),
      );
    }
    const result = await layer.groupSend(body.group, body.event);
    return json(200, result);
  } catch (error) {
    return failed(`"${body.group}"`, error);
  }
};

// What the layer refused with a `TypeError` is the request's fault (a name Channels does not
// take, an event that is not plain data): 400, not to be retried. Anything else is the
// server's or its storage's: 503.
function failed(target: string, error: unknown): Response {
  const message = (error as Error).message;
  if (error instanceof TypeError) return json(400, { error: message });
  log.warn(`${SEND_PATH} to ${target} failed`, error);
  if (error instanceof PublishUnconfirmedError) {
    // Stored or not, nobody knows: a retry may store it twice.
    return json(503, { error: `Not confirmed: ${message}`, unconfirmed: true });
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
  layer: GroupLayer,
  body: { channel: string; event: LayerEvent },
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
    return json(200, await layer.send(body.channel, body.event));
  } catch (error) {
    return failed(`channel "${body.channel}"`, error);
  }
}

function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

/** Compares two secrets in time that does not depend on where they differ. */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Hashing first gives equal lengths, so not even the length leaks.
  const digest = (text: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return timingSafeEqual(await digest(given), await digest(expected));
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
  const text = await readBodyText(request, limit);
  if (text === null) return { error: `The body is over ${limit} bytes`, status: 413 };
  let value: { group?: unknown; channel?: unknown; event?: unknown };
  try {
    value = JSON.parse(text);
  } catch {
    return {
      error: 'The body must be JSON like {"group": "chat.lobby", "event": {"type": "..."}}',
    };
  }
  if (typeof value?.channel === "string" && value.group === undefined) {
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

/** `POST /_send/`, only when a token is configured: it sends as the server. */
export function sendRoutes(config: Config): AppRoute[] {
  return config.sendToken ? [page("POST", SEND_PATH, sendEvent)] : [];
}
