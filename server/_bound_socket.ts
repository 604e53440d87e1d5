/**
 * A socket bound to what signed it in, a session or an access token: it joins that binding's
 * group before its upgrade (a log-out or a revoke sends `connection.close` there), and reads the
 * binding's record again wherever that close may have missed it: once it is in the group (the
 * close may have gone just before), and when the layer lost events to it. `_session_socket.ts`
 * and `_token_sockets.ts` say what each binding's group, record and words are.
 */
import type { WebSocketConnection } from "./_connection.ts";
import type { RefusalReason } from "./server_metrics.ts";
import { CloseCode } from "./close_codes.ts";
import { SESSION_RENEWED } from "./ended_sessions.ts";
import { throughOutage } from "./_through_outage.ts";
import { log } from "../telemetry/log.ts";

/** How a handshake is refused: status, the reason counted, the reason given. */
export type BindingRefusal = [number, RefusalReason, string];

/**
 * What a read of a binding's record finds: `live`; `ended` once it is gone (logged out,
 * revoked); `renewed` once it is gone to a new session of the same user (a password change on
 * its page, a log-in again), whose sockets reconnect rather than log out.
 */
export type BindingState = "live" | "ended" | "renewed";

/** What a socket is bound to. */
export interface Binding {
  /** What the messages call it: "session", "token". */
  kind: string;
  /** The group its log-out or revoke tells. */
  group: string;
  /**
   * Groups joined with `group`, before the record is read again: Django's user group, told
   * when a password change may have ended the session.
   */
  otherGroups?: readonly string[];
  /** Reads its record; rejects when the store cannot say. */
  read(): Promise<BindingState>;
  /** The refusal of a handshake whose binding ended while it connected. */
  endedMeanwhile: BindingRefusal;
}

/**
 * How a socket whose binding is no longer live closes: 4002 "Session renewed" for a renewed
 * one, else 4001 with `reason` (as the close its log-out or revoke sent).
 */
export function closeOfEnded(
  state: Exclude<BindingState, "live">,
  reason: string,
): [number, string] {
  return state === "renewed"
    ? [CloseCode.SESSION_RENEWED, SESSION_RENEWED]
    : [CloseCode.LOGGED_OUT, reason];
}

/** What watches a joining socket's binding in the store (`_stamp_watch.ts`). */
export interface BindingWatch {
  /** Runs once the socket is in the group; its record is read again once this resolved. */
  joined(): void | Promise<void>;
  /** That read failed: a change may be in neither it nor the watch's stamp. */
  unchecked(): void;
}

/**
 * Joins `binding`'s group with an accepted connection, before its upgrade, telling `watch`.
 * Resolves `null`, or how the handshake is refused once the connection was ended.
 */
export async function joinBindingGroup(
  connection: WebSocketConnection,
  binding: Binding,
  watch?: BindingWatch,
): Promise<BindingRefusal | null> {
  const path = connection.scope.path;
  const groups = [binding.group, ...binding.otherGroups ?? []];
  const refused = await joinGroups(connection, groups, binding.kind);
  if (refused !== null) return refused;
  await watch?.joined();
  // A log-out or revoke that ran while this socket connected deleted the record, then told the
  // group, maybe before the socket was in it. Read again now that it is in the group.
  const state = await readAgain(binding, path);
  if (state === null) watch?.unchecked();
  if (state === null || state === "live") return null;
  if (state === "ended") {
    await connection.abort(CloseCode.LOGGED_OUT);
    return binding.endedMeanwhile;
  }
  // Its consumer hears 4002, as the sockets the renewal closed did (a tab's presence keeps its
  // grace); the handshake is refused all the same, and the page reconnects under the new id.
  await connection.abort(CloseCode.SESSION_RENEWED);
  const [status, counted] = binding.endedMeanwhile;
  return [status, counted, `${SESSION_RENEWED} while the socket connected`];
}

/**
 * Joins `groups` with an accepted connection, before its upgrade; `kind` says whose they are
 * in the log ("session", "browser"). Resolves `null`, or the handshake's refusal (503) once the
 * layer failed and the connection was ended: nothing stays behind (groups, presence, a cap's
 * place).
 */
export async function joinGroups(
  connection: WebSocketConnection,
  groups: readonly string[],
  kind: string,
): Promise<BindingRefusal | null> {
  try {
    for (const group of groups) await connection.groupAdd(group);
    return null;
  } catch (error) {
    log.warn(`Could not join the ${kind}'s group for ${connection.scope.path}`, error);
    await connection.abort(CloseCode.TRY_AGAIN_LATER);
    return [503, "unavailable", "Server busy: the layer is unavailable; retry later"];
  }
}

/**
 * Reads `binding`'s record again for a socket the layer may have lost events to: gone, the
 * socket closes with 4001 and `reason` (4002 when renewed: see {@linkcode closeOfEnded}), or
 * with `closing` when given; not checked through an outage, it closes too (its handshake checks
 * it when it comes back).
 */
export async function recheckBinding(
  conn: WebSocketConnection,
  binding: Pick<Binding, "kind" | "read">,
  reason: string,
  closing?: [number, string],
): Promise<void> {
  await throughOutage(conn, async () => {
    const state = await binding.read();
    if (state !== "live") conn.close(...closing ?? closeOfEnded(state, reason));
  }, {
    log: `Could not read the ${binding.kind} again for ${conn.scope.path}; closing it`,
    reason: `Could not check the ${binding.kind}: reconnect`,
  });
}

// What the record's read finds; `null`, taken as "not gone", when the store cannot say (the
// socket was accepted on it a moment ago, and a log-out's or revoke's close still reaches it).
async function readAgain(binding: Binding, path: string): Promise<BindingState | null> {
  try {
    return await binding.read();
  } catch (error) {
    log.warn(`Could not read the ${binding.kind} again for ${path}`, error);
    return null;
  }
}
