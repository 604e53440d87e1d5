/**
 * What revoking access tokens leaves for the servers, so the sockets open with those tokens
 * close rather than stay open until the tokens expire:
 *
 * - the **group** every socket opened with one of a user's tokens joins ({@linkcode tokenGroup}):
 *   the revoker sends `connection.close` there, which reaches every server on a layer that
 *   crosses processes (Redis);
 * - a short-lived **marker** in the store naming the revoked tokens ({@linkcode revocationMarker}):
 *   a server whose layer lives inside it (`memory`, `broadcast`) cannot hear another process's
 *   send (`deno task token --revoke-all`), so it reads the markers every
 *   {@linkcode REVOCATION_CHECK_MS} while it has token sockets open, and closes theirs.
 *
 * @example
 * ```ts
 * import { tokenGroup } from "@channels/deno";
 *
 * const group = await tokenGroup("ada"); // "tokens.<32 hex digits>", the same for "ADA"
 * ```
 */
import type { Store, StoreChange, StoreKey } from "../storage/store.ts";
import { sortableId } from "../storage/store.ts";
import { lowerCaseUsernameKey } from "./account_rules.ts";

/**
 * How often a server on an in-process layer reads the revocation markers while it has sockets
 * open with tokens: a revoke from another process closes them within this long.
 */
export const REVOCATION_CHECK_MS = 2_000;

/** How long a marker stays: many checks' worth, so a server busy for a while still sees it. */
export const REVOCATION_MARKER_MS = 60_000;

/** A revoke as its marker tells it: which tokens stopped being valid. */
export interface TokenRevocation {
  /** The marker's own id: a server acts on each marker once. */
  id: string;
  /** The ids of the tokens revoked. */
  tokenIds: readonly string[];
}

const REVOCATIONS = "token_revocations";
const TOKEN_GROUP_PREFIX = "tokens.";
// More markers than revokes of a few seconds could make: a bound on the read, never reached.
const MAX_MARKERS_READ = 500;
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

/** The store write that tells servers the tokens `tokenIds` were revoked (a marker that expires). */
export function revocationMarker(tokenIds: readonly string[]): StoreChange {
  const key: StoreKey = [REVOCATIONS, sortableId()];
  return { key, value: { tokenIds }, expireInMs: REVOCATION_MARKER_MS };
}

/** The markers of the last {@linkcode REVOCATION_MARKER_MS} (maybe a few older: expiry is lazy). */
export async function recentRevocations(store: Store): Promise<TokenRevocation[]> {
  const entries = await store.list<{ tokenIds?: unknown }>([REVOCATIONS], {
    limit: MAX_MARKERS_READ,
    reverse: true,
  });
  return entries.map((entry) => ({
    id: entry.key[entry.key.length - 1],
    tokenIds: Array.isArray(entry.value?.tokenIds) ? entry.value.tokenIds.map(String) : [],
  }));
}
