/**
 * What revoking access tokens leaves for the servers, so the sockets open with those tokens
 * close rather than stay open until the tokens expire:
 *
 * - the **group** every socket opened with one of a user's tokens joins ({@linkcode tokenGroup}):
 *   the revoker sends `connection.close` there, which reaches every server on a layer that
 *   crosses processes (Redis);
 * - a **stamp** in the store that every revoke changes ({@linkcode revocationStamp}): a server
 *   whose layer lives inside it (`memory`, `broadcast`) cannot hear another process's send
 *   (`deno task token --revoke-all`), so it reads the stamp every {@linkcode REVOCATION_CHECK_MS}
 *   while it has token sockets open, and when it changed, reads again the records of the tokens
 *   its sockets were opened with. One key, however many revokes: none can hide another.
 *
 * @example
 * ```ts
 * import { tokenGroup } from "@channels/deno";
 *
 * const group = await tokenGroup("ada"); // "tokens.<32 hex digits>", the same for "ADA"
 * ```
 */
import type { Store, StoreChange, StoreKey } from "../storage/store.ts";
import { newStamp, readStamp } from "../storage/stamps.ts";
import { lowerCaseUsernameKey } from "./account_rules.ts";

/**
 * How often a server on an in-process layer reads the revocation stamp while it has sockets
 * open with tokens: a revoke from another process closes them within this long.
 */
export const REVOCATION_CHECK_MS = 2_000;

// The stamp's key: one value, replaced by every revoke.
const STAMP_KEY: StoreKey = ["token_revocations", "latest"];
const TOKEN_GROUP_PREFIX = "tokens.";
const encoder = new TextEncoder();

/**
 * The group every socket opened with one of `username`'s access tokens joins, so revoking them
 * can close those sockets. Named by a hash of the user's lower-case key: one group whatever the
 * case the name is given in, and a valid name on every layer (channels_redis' too).
 */
export async function tokenGroup(username: string): Promise<string> {
  const key = encoder.encode(lowerCaseUsernameKey(username));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", key));
  return `${TOKEN_GROUP_PREFIX}${digest.toHex().slice(0, 32)}`;
}

/** True for a user's token group (see {@linkcode tokenGroup}). */
export function isTokenGroup(group: string): boolean {
  return group.startsWith(TOKEN_GROUP_PREFIX);
}

/**
 * The store write that tells servers some tokens were revoked: a new stamp (a unique, sortable
 * id), written after the tokens' records were deleted.
 */
export function revocationStamp(): StoreChange {
  return newStamp(STAMP_KEY);
}

/** The latest revocation's stamp, or `null` when no token was ever revoked on this store. */
export async function latestRevocation(store: Store): Promise<string | null> {
  return await readStamp(store, STAMP_KEY);
}
