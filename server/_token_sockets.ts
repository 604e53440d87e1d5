/**
 * Sockets opened with an access token, bound to it as a session's are to their session: each
 * joins its user's token group (revoking sends `connection.close` there), and is checked again
 * whenever that close may have missed it (during its handshake, or when the layer lost events
 * to it). On a layer that lives inside the server (`memory`, `broadcast`), a revoke from another
 * process (`deno task token --revoke-all`) cannot reach the group: the server watches the store's
 * revocation stamp (`_stamp_watch.ts`), and when a revoke changed it, reads again the record of
 * each token its sockets were opened with.
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
  type BindingState,
  joinBindingGroup,
  recheckBinding,
} from "./_bound_socket.ts";
import { StampWatch } from "./_stamp_watch.ts";

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
  #tokenOf = new Map<WebSocketConnection, Bound>();
  /** Over Redis, another process's close reaches every server: no stamp needs reading. */
  #revocations: StampWatch<Bound> | null;

  /** Binds the token sockets opened on `services`. */
  constructor(services: Services) {
    this.#services = services;
    this.#revocations = layerCrossesProcesses(services.config) ? null : new StampWatch({
      readStamp: () => latestRevocation(services.store),
      read: (token) => readToken(services, token),
      checkEveryMs: REVOCATION_CHECK_MS,
      reason: TOKEN_REVOKED,
      what: "the token revocations",
    });
  }

  /**
   * Joins an accepted connection's token group, before its upgrade. Resolves `null`, or how the
   * handshake is refused (status, reason counted, reason given) once the connection was ended.
   */
  async join(connection: WebSocketConnection, token: Bound): Promise<BindingRefusal | null> {
    const binding = await this.#binding(token);
    // Tracked once in the group, before the re-read: the store's checks cover what comes after.
    return await joinBindingGroup(connection, binding, {
      joined: () => this.#track(connection, token),
      unchecked: () => this.#revocations?.readAllNextCheck(),
    });
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
      read: () => readToken(this.#services, token),
      endedMeanwhile: [403, "token", "Token revoked while the socket connected"],
    };
  }

  async #track(conn: WebSocketConnection, token: Bound): Promise<void> {
    this.#tokenOf.set(conn, token);
    conn.onFinished(() => this.#tokenOf.delete(conn));
    await this.#revocations?.add(conn, token.tokenId, token);
  }
}

// A token is live or ended: none is ever renewed.
async function readToken(services: Services, token: Bound): Promise<BindingState> {
  return await services.tokens.isLive(token) ? "live" : "ended";
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
