/**
 * What a handshake and a plain `GET` of the same WebSocket route share: the checks before the
 * consumer (the Origin, the login), and the answer to that `GET` when a handshake there would be
 * refused for good (see {@linkcode knownRefusal}): a browser's `WebSocket` hides a refusal's
 * status and reason, so the reconnecting client asks (`client/address_check.js`).
 */
import type { RequestContext } from "./context.ts";
import type { Identity } from "../auth/identify.ts";
import { isOriginAllowed, originRefusal } from "../auth/origin.ts";
import { clientHost } from "../auth/throttle.ts";
import { quoteClipped } from "../telemetry/log.ts";
import { CloseCode } from "./close_codes.ts";
import type { RefusalReason } from "./server_metrics.ts";
import type { RecentRefusals, RefusedAsker } from "./_recent_refusals.ts";

/**
 * The header of a plain `GET`'s 403 that tells why a handshake at the same address is refused
 * (`token`, `login_required`, `name_conflict`, `origin` or `consumer`): a reconnecting client
 * stops on it rather than retrying for ever (`client/address_check.js`).
 */
export const REFUSED_HEADER = "channels-refused";

// Why a login-required route refuses a handshake from a signed-out client.
const LOGIN_REQUIRED = "Login required: log in to open this connection";

/** What {@linkcode knownRefusal} reads of a route. */
export interface QuestionedRoute {
  /** What its consumer refused lately. */
  recent: RecentRefusals;
  /** It refuses signed-out clients. */
  loginRequired?: boolean;
}

// A consumer that refuses with one of these (`conn.close(1013)` in `connect`: try again later)
// says a later attempt may pass: its refusal is not told as one that stands.
const FOR_NOW_CODES: ReadonlySet<number> = new Set([
  CloseCode.INTERNAL_ERROR,
  CloseCode.SERVICE_RESTART,
  CloseCode.TRY_AGAIN_LATER,
]);

/** Whether a consumer's refusal with close code `code` (none: `undefined`) is kept to be told. */
export function refusalStands(code: number | undefined): boolean {
  return code === undefined || !FOR_NOW_CODES.has(code);
}

/**
 * Why a handshake at a plain `GET`'s address would be refused for good, or `null`: the checks
 * before the consumer, run again as for a handshake, then the consumer's last refusal of the
 * same client (see `_recent_refusals.ts`). A backend away (503), a token that could not be
 * checked or a cap reached (429) is not told: a later attempt may pass.
 */
export async function knownRefusal(
  route: QuestionedRoute,
  request: Request,
  context: RequestContext,
): Promise<{ why: RefusalReason; reason: string } | null> {
  const crossSite = originDenied(asFromPage(request), context);
  if (crossSite !== null) return { why: "origin", reason: crossSite };
  const address = clientHost(context.client);
  const identity = await context.services.identify(request, { tokens: true, client: address });
  if (identity.unavailable !== undefined) return null;
  const refused = identityRefusal(identity, route.loginRequired);
  if (refused !== null) return refused.forNow ? null : { why: refused.why, reason: refused.reason };
  const reason = route.recent.find(await askerOf(request, context, identity));
  return reason === undefined ? null : { why: "consumer", reason };
}

/**
 * Why a handshake by `identity` is refused for who it is (a read identity: one the store could
 * not read, `unavailable`, is the caller's to answer), or `null`: a token refused, a Django name
 * that passes for an account here, a login required. `forNow`: the refusal may pass later (a
 * token or a session the store answered with an error), so it is not told as one that stands.
 */
export function identityRefusal(
  identity: Identity,
  loginRequired: boolean | undefined,
): { why: RefusalReason; reason: string; forNow: boolean } | null {
  if (identity.refused !== undefined) {
    return { why: "token", reason: identity.refused, forNow: identity.refusedForNow === true };
  }
  if (identity.conflict !== undefined) {
    return { why: "name_conflict", reason: identity.conflict, forNow: false };
  }
  if (loginRequired && !identity.user.isAuthenticated) {
    return {
      why: "login_required",
      reason: LOGIN_REQUIRED,
      forNow: identity.sessionUnread === true,
    };
  }
  return null;
}

/**
 * Who asked, as the consumer's refusals are kept: by client, session or user (else the cookies
 * it sent, by their hash: an app's own log-in, or one browser among many behind one address;
 * kept neither in memory nor too long to keep, however many analytics cookies), and address.
 * Read before the upgrade, after which the request's headers are gone.
 */
export async function askerOf(
  request: Request,
  context: RequestContext,
  identity: Identity,
): Promise<RefusedAsker> {
  const who = identity.sessionId ??
    (identity.user.isAuthenticated
      ? `user ${identity.user.username}`
      : `cookies ${await digest(request.headers.get("cookie") ?? "")}`);
  const { pathname, search } = context.url;
  return { client: clientHost(context.client), who, address: pathname + search };
}

async function digest(text: string): Promise<string> {
  if (text === "") return "";
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(hash)));
}

// A same-origin page's `fetch` sends no Origin with a GET, where its WebSocket sends one: the
// page's origin is then read from its Referer (sent by default within one origin), so that a
// handshake refused for its Origin (a proxy that dropped the port from Host) is told too.
function asFromPage(request: Request): Request {
  if (request.headers.has("origin")) return request;
  const referer = request.headers.get("referer");
  if (referer === null) return request;
  let origin;
  try {
    origin = new URL(referer).origin;
  } catch {
    return request;
  }
  if (origin === "null") return request;
  const headers = new Headers(request.headers);
  headers.set("origin", origin);
  return new Request(request.url, { headers });
}

/**
 * Why the request's Origin is refused, or `null`. The check guards ambient credentials
 * (cookies) a browser adds on a cross-site page. A token-only client carries none: it sends no
 * Origin (let through) or its own host's.
 */
export function originDenied(request: Request, context: RequestContext): string | null {
  const { config } = context.services;
  const policy = { allowedHosts: config.allowedHosts, trustProxy: config.trustProxy };
  if (isOriginAllowed(request, policy)) return null;
  return `Cross-site WebSocket refused: the Origin ${quoteClipped(request.headers.get("origin"))} ${
    originRefusal(request, policy)
  }`;
}
