/**
 * Changing a user's password, as Django's `PasswordChangeView` and `manage.py changepassword`
 * do it, and then some: the new hash is stored, and every other session of the user ends on
 * every server the layer reaches, its pages logged out and its sockets closed (4001), so a
 * stolen session does not outlive the change. Access tokens are kept (GitHub and Django REST
 * framework keep them too): the tokens page revokes them.
 *
 * @example
 * ```ts
 * import { changePassword, type Services } from "@channels/deno";
 *
 * declare const services: Services;
 * declare const currentSessionId: string;
 * // The caller checked the old password and the account rules.
 * await changePassword(services, "ada", "a new long passphrase", { except: currentSessionId });
 * ```
 */
import type { Services } from "./context.ts";
import type { UserRecord } from "../auth/users.ts";
import type { Store, StoreKey } from "../storage/store.ts";
import { closeEndedSession } from "./ended_sessions.ts";
import { newStamp, readStamp } from "../storage/stamps.ts";
import { log } from "../telemetry/log.ts";

/** The reason the sockets of the sessions a password change ended are closed with. */
export const PASSWORD_CHANGED = "Logged out: the password changed";

/**
 * How often a server on an in-process layer reads the store's password-change stamp while it
 * has sockets opened with a session: a change from another process (`deno task changepassword`)
 * closes the ended sessions' sockets within this long.
 */
export const PASSWORD_CHANGE_CHECK_MS = 2_000;

// Replaced by every password change that ended sessions, once they are deleted: a server whose
// layer another process cannot reach reads it, and then its sockets' sessions.
const STAMP_KEY: StoreKey = ["password_changes", "latest"];

/** What a password change did. */
export interface PasswordChange {
  /** The user, with the new hash. */
  user: UserRecord;
  /** How many sessions it ended. */
  endedSessions: number;
}

/** Options of {@linkcode changePassword}. */
export interface ChangePasswordOptions {
  /**
   * The session to keep (the one that asked for the change): the caller then signs its browser
   * in again with `logIn` (`log_in.ts`) and the user this resolves with, which gives it a new id
   * and tells its sockets to reconnect (4002). Read before then, it is refused, being older
   * than the change.
   */
  except?: string | null;
}

/**
 * Stores `password` as `username`'s (the caller checks the rules) and ends the user's other
 * sessions, closing their sockets through the layer; `null` when there is no such user. Throws
 * {@linkcode UserChangeConflictError} when other changes to the user kept beating this one
 * (nothing was changed).
 */
export async function changePassword(
  services: Services,
  username: string,
  password: string,
  options: ChangePasswordOptions = {},
): Promise<PasswordChange | null> {
  const user = await services.users.setPassword(username, password);
  if (user === null) return null;
  const groups = await services.sessions.endAllOf(user.username, {
    except: options.except,
    // A session is the user's when its name finds this user (log-in takes any spelling).
    isSameUser: async (name) =>
      name === user.username || (await services.users.find(name))?.username === user.username,
  });
  // After the deletes, before the layer's closes: a server the layer does not reach reads it.
  if (groups.length > 0) {
    await services.store.writeMany([newStamp(STAMP_KEY)]).catch((error) =>
      log.warn("Could not stamp the password change for servers on in-process layers", error)
    );
  }
  await Promise.all(groups.map((group) => closeEndedSession(services, group, PASSWORD_CHANGED)));
  log.info(`Password changed: ${JSON.stringify(user.username)}, ${groups.length} session(s) ended`);
  return { user, endedSessions: groups.length };
}

/** The latest password change's stamp, `null` when none ended a session on this store. */
export async function latestPasswordChange(store: Store): Promise<string | null> {
  return await readStamp(store, STAMP_KEY);
}
