/**
 * Checking a WebSocket opening handshake (RFC 6455 section 4.2.1) before it is upgraded.
 * A malformed handshake must never reach `Deno.upgradeWebSocket`, which would throw and turn a
 * client's mistake into a 500; this says instead which 400 or 426 to answer with, and why.
 *
 * @example
 * ```ts
 * import { checkHandshake } from "@channels/deno";
 *
 * function upgrade(request: Request): Response {
 *   const refusal = checkHandshake(request);
 *   if (refusal) {
 *     return new Response(refusal.reason + "\n", refusal);
 *   }
 *   return Deno.upgradeWebSocket(request).response;
 * }
 * ```
 */
import { quoteClipped } from "../telemetry/log.ts";

/** Why an upgrade request is refused before `Deno.upgradeWebSocket` runs. */
export interface HandshakeRefusal {
  /** 400 for a malformed handshake, 426 when the client must change its WebSocket version. */
  status: 400 | 426;
  /** Why, in words for the log and the response body. */
  reason: string;
  /** Headers the refusal carries, e.g. how to upgrade with a 426. */
  headers: Record<string, string>;
}

/** The headers a 426 carries, telling the client how to upgrade. */
const UPGRADE_HEADERS: Readonly<Record<string, string>> = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-version": "13",
};

/** 24 characters of standard base64 ending in `==`: exactly 16 bytes once decoded. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/** Whether a comma-separated header value lists `token`, case-insensitively. */
function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  return value.split(",").some((part) => part.trim().toLowerCase() === token);
}

/** Whether `request` asks to become a WebSocket (`Upgrade: websocket`), well formed or not. */
export function asksForWebSocket(request: Request): boolean {
  return hasToken(request.headers.get("upgrade"), "websocket");
}

/** The subprotocols a handshake offers (`Sec-WebSocket-Protocol`, comma-separated), in order. */
export function offeredSubprotocols(headers: Headers): string[] {
  const offered = headers.get("sec-websocket-protocol");
  if (offered === null) return [];
  return offered.split(",").map((name) => name.trim()).filter((name) => name !== "");
}

/**
 * Whether Deno's `upgradeWebSocket` can answer `request` with `protocol`: it looks for it by
 * splitting the header at ", " exactly, so an offer written `chat,other` (valid HTTP, and what
 * some clients send) cannot be answered with `chat`; asked to, Deno throws.
 */
export function denoCanAnswer(request: Request, protocol: string): boolean {
  return request.headers.get("sec-websocket-protocol")?.split(", ").includes(protocol) ?? false;
}

/** Checks a request to a WebSocket route as RFC 6455 section 4.2.1 asks; `null` when it may be upgraded. */
export function checkHandshake(request: Request): HandshakeRefusal | null {
  const headers = request.headers;
  if (!asksForWebSocket(request)) {
    return {
      status: 426,
      reason: "Not a WebSocket upgrade: connect with a WebSocket client",
      headers: { ...UPGRADE_HEADERS },
    };
  }
  if (request.method !== "GET") {
    return {
      status: 400,
      reason: `Bad handshake: method "${request.method}" is not allowed, use "GET"`,
      headers: {},
    };
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    return {
      status: 400,
      reason: 'Bad handshake: the Connection header must contain "Upgrade"',
      headers: {},
    };
  }
  const version = headers.get("sec-websocket-version")?.trim();
  if (version !== "13") {
    return {
      status: 426,
      reason: version === undefined
        ? "Missing Sec-WebSocket-Version header: this server speaks version 13"
        : `Unsupported WebSocket version ${quoteClipped(version)}: this server speaks version 13`,
      headers: { ...UPGRADE_HEADERS },
    };
  }
  const key = headers.get("sec-websocket-key")?.trim();
  if (key === undefined || !KEY_PATTERN.test(key)) {
    return {
      status: 400,
      reason: "Bad handshake: Sec-WebSocket-Key must be 16 bytes in base64",
      headers: {},
    };
  }
  return null;
}
