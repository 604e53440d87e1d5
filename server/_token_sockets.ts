/**
 * Sockets opened with an access token, bound to it as a session's are to their session: each
 * joins its user's token group (revoking sends `connection.close` there), and is checked again
 * whenever that close may have missed it (during its handshake, or when the layer lost events
 * to it). On a layer that lives inside the server (`memory`, `broadcast`), a revoke from another
 * process (`deno task token --revoke-all`) cannot reach the group: the server reads the store's
 * revocation stamp every few seconds, only while it has token sockets open, and when a revoke
 * changed it, reads again the record of each token its sockets were opened with.
 */
import type { Services } from "./context.ts";
import type { WebSocketConnection } from "./_connection.ts";
import type { GroupLayer, SendResult } from "../layers/layer.ts";
import type { TokenClaims } from "../auth/tokens.ts";
import { CLOSE_EVENT } from "./_connection_constants.ts";
import { CloseCode } from "./close_codes.ts";
import { latestRevocation, REVOCATION_CHECK_MS, tokenGroup } from "../auth/token_revocations.ts";
import { layerCrossesProcesses } from "./backends.ts";
import {
  type Binding,
  type BindingRefusal,
  joinBindingGroup,
  recheckBinding,
} from "./_bound_socket.ts";
import { log } from "../telemetry/log.ts";

/** The reason a socket gets when its token is revoked. */
export const TOKEN_REVOKED = "Token revoked";

/**
 * Closes, on every server the layer reaches, the sockets open with `username`'s access tokens
 * (4001, "Token revoked"): call it after `services.tokens.revokeAll`. A server whose layer
 * this one does not reach (another process on `memory`) closes them at its next check of the
 * store's revocation stamp instead.
 *
 * @example
 * ```ts
 * import { closeTokenSockets, type Services } from "@channels/deno";
 *
 * declare const services: Services;
 * await services.tokens.revokeAll("ada");
 * await closeTokenSockets(services.layer, "ada");
 * ```
 */
export async function closeTokenSockets(layer: GroupLayer, username: string): Promise<SendResult> {
  const event = { type: CLOSE_EVENT, code: CloseCode.LOGGED_OUT, reason: TOKEN_REVOKED };
  return await layer.groupSend(await tokenGroup(username), event);
}

type Bound = Pick<TokenClaims, "username" | "tokenId">;

/** The token sockets of one app's services (see {@linkcode tokenSockets}). */
export class TokenSockets {
  #services: Services;
  #watchesStore: boolean;
  #tokenOf = new Map<WebSocketConnection, Bound>();
  /** The open sockets by token: a check reads each token's record once, whatever its sockets. */
  #byTokenId = new Map<string, { token: Bound; sockets: Set<WebSocketConnection> }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped when the checks stop: a check under way then knows it is no longer wanted. */
  #round = 0;
  /** The stamp the last re-read of the tokens followed; `undefined` until one ran. */
  #stampSeen: string | null | undefined = undefined;
  #failing = false;

  /** Binds the token sockets opened on `services`. */
  constructor(services: Services) {
    this.#services = services;
    // Over Redis, another process's close reaches every server: no stamp needs reading.
    this.#watchesStore = !layerCrossesProcesses(services.config);
  }

  /**
   * Joins an accepted connection's token group, before its upgrade. Resolves `null`, or how the
   * handshake is refused (status, reason counted, reason given) once the connection was ended.
   */
  async join(connection: WebSocketConnection, token: Bound): Promise<BindingRefusal | null> {
    const binding = await this.#binding(token);
    // Tracked once in the group, before the re-read: the store's checks cover what comes after.
    return await joinBindingGroup(connection, binding, () => this.#track(connection, token));
  }

  /**
   * What a token socket does when the layer may have lost events to it (its Redis subscription
   * was down): a revoke's close may have been one of them, so the token's record is read again.
   */
  readonly recheck = async (conn: WebSocketConnection): Promise<void> => {
    const token = this.#tokenOf.get(conn);
    if (token === undefined) return;
    await recheckBinding(conn, await this.#binding(token), TOKEN_REVOKED);
  };

  // Revoking the user's tokens sends `connection.close` to their token group.
  async #binding(token: Bound): Promise<Binding> {
    return {
      kind: "token",
      group: await tokenGroup(token.username),
      isLive: () => this.#services.tokens.isLive(token),
      endedMeanwhile: [403, "token", "Token revoked while the socket connected"],
    };
  }

  #track(conn: WebSocketConnection, token: Bound): void {
    this.#tokenOf.set(conn, token);
    conn.onFinished(() => this.#forget(conn, token.tokenId));
    // By token only for the store's checks: over Redis, the revoke's close reaches the group.
    if (!this.#watchesStore) return;
    const bound = this.#byTokenId.get(token.tokenId);
    if (bound === undefined) {
      this.#byTokenId.set(token.tokenId, { token, sockets: new Set([conn]) });
    } else bound.sockets.add(conn);
    if (this.#timer === undefined) this.#nextCheck(++this.#round);
  }

  #forget(conn: WebSocketConnection, tokenId: string): void {
    this.#tokenOf.delete(conn);
    const sockets = this.#byTokenId.get(tokenId)?.sockets;
    sockets?.delete(conn);
    if (sockets?.size === 0) this.#byTokenId.delete(tokenId);
    if (this.#tokenOf.size > 0 || this.#timer === undefined) return;
    // No token socket left: nothing to check the store for.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#round++;
    this.#stampSeen = undefined; // the next sockets' first check reads their tokens again
  }

  #nextCheck(round: number): void {
    this.#timer = setTimeout(() => void this.#check(round), REVOCATION_CHECK_MS);
    // Not a reason to keep the process up: a stop closes the sockets anyway.
    Deno.unrefTimer(this.#timer);
  }

  // One read of the store per round while nothing was revoked, however many sockets are open;
  // after a revoke anywhere, one more per token its sockets were opened with.
  async #check(round: number): Promise<void> {
    try {
      const stamp = await latestRevocation(this.#services.store);
      if (stamp !== this.#stampSeen) {
        await this.#closeRevoked(round);
        // Only once every token was read: a read that failed is made again next round.
        if (round === this.#round) this.#stampSeen = stamp;
      }
      this.#failing = false;
    } catch (error) {
      // Said once per outage, not every round.
      if (!this.#failing) log.warn("Could not read the token revocations; trying again", error);
      this.#failing = true;
    }
    if (round !== this.#round) return;
    this.#nextCheck(round);
  }

  // The stamp was read first, and a revoke deletes its records before it writes the stamp: a
  // revoke that changed it is seen here, and one that comes after changes it again.
  async #closeRevoked(round: number): Promise<void> {
    for (const { token, sockets } of [...this.#byTokenId.values()]) {
      if (round !== this.#round) return;
      if (await this.#services.tokens.isLive(token)) continue;
      for (const conn of [...sockets]) conn.close(CloseCode.LOGGED_OUT, TOKEN_REVOKED);
    }
  }
}

// By services: one registry for all the sockets of an app, whichever route opened them.
const registries = new WeakMap<Services, TokenSockets>();

/** The token sockets of the app built on `services`. */
export function tokenSockets(services: Services): TokenSockets {
  let registry = registries.get(services);
  if (registry === undefined) {
    registry = new TokenSockets(services);
    registries.set(services, registry);
  }
  return registry;
}
