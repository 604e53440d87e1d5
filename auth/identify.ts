/**
 * Channels' `AuthMiddlewareStack` for this server: the session cookie of a request (a page or
 * a WebSocket upgrade) names the user, or the request is anonymous.
 *
 * A WebSocket upgrade may instead present an access token (`Authorization: Bearer …` or
 * `?token=…`, see `tokens.ts`), for clients that are not browsers. The cookie wins when it
 * names a user. A token that is presented and fails (bad, expired, revoked) is not quietly
 * anonymous: the identity carries why, and the handshake is refused with that reason, so a
 * client whose token stopped working learns it at once. Pages take cookies only: their forms
 * and CSRF checks are built around the browser's session.
 */
import type { SessionRecord, SessionStore } from "./sessions.ts";
import type { UserDirectory, UserRecord } from "./users.ts";
import type { AccessTokens } from "./tokens.ts";
import { readCookies, SESSION_COOKIE } from "./cookies.ts";
import { lookalikeKey, usernameKey } from "./account_rules.ts";
import { presentedToken } from "./tokens.ts";
import { log } from "../telemetry/log.ts";
import { isBackendUnavailable } from "../storage/unavailable.ts";

/** Who is on the other end. Anonymous until the accounts layer fills it from the session. */
export interface User {
  /** The signed-in name; `null` when anonymous. */
  readonly username: string | null;
  /** True when a live session names the user. */
  readonly isAuthenticated: boolean;
  /**
   * Where the user signed in when not on this server: `"django"` for a Django session
   * (`django_session.ts`). Absent for this server's own accounts, the only ones that can be staff.
   */
  readonly source?: "django";
  /**
   * Django's id of the user (its `pk`), when Django's view gives one (`"id": 42`): a consumer
   * moved from Channels that names groups by it (`f"user_{user.id}"`) keeps them. Absent for
   * this server's own accounts, which are known by name.
   */
  readonly id?: number | string;
}

/** The anonymous user. */
export const ANONYMOUS: User = Object.freeze({ username: null, isAuthenticated: false });

/** Who made a request, as the session says. */
export interface Identity {
  /** The session's user, or the anonymous user when there is none. */
  user: User;
  /** The id of the live session behind `user`; `null` when anonymous or named by a token. */
  sessionId: string | null;
  /**
   * The id of the access token behind `user`, when a token named it (see `tokens.ts`): a socket
   * opened with it joins its user's token group, and closes when the token is revoked.
   */
  tokenId?: string;
  /**
   * When the session or token behind `user` ends (ms since the epoch): a socket opened with it
   * closes then. Absent when anonymous.
   */
  expiresAt?: number;
  /**
   * Why a presented access token was refused (bad, expired, revoked): the request is then
   * anonymous, and a WebSocket handshake is refused with this reason. Never quotes the token.
   */
  refused?: string;
  /**
   * The refusal may pass later: the token could not be checked (its store answered with an
   * error). A client is not told it stands for good (see `server/websocket_route.ts`).
   */
  refusedForNow?: true;
  /**
   * The session the request named could not be read (its store answered with an error that is
   * no outage): anonymous for now. A login-required route's refusal is then not told as one
   * that stands.
   */
  sessionUnread?: true;
  /**
   * Why the session or token could not be read (the store is away: Redis restarting): the
   * request is then anonymous for a page, and a WebSocket handshake is refused with 503 and
   * this reason, to be tried again, rather than opened as anonymous or refused as unknown.
   */
  unavailable?: string;
  /**
   * Why the user another server's session named (Django's) was refused: its name is, folded,
   * one of this server's accounts. The request is then anonymous, and a WebSocket handshake is
   * refused with this reason.
   */
  conflict?: string;
  /**
   * The session kept elsewhere (Django's, see `django_session.ts`) behind `user`: a socket
   * opened with it joins its group, and closes when a log-out there sends `connection.close`.
   */
  external?: ExternalSession;
}

/** A session another server keeps (Django's), as a socket opened with it is bound to it. */
export interface ExternalSession {
  /** What log lines call it: "Django session". */
  readonly kind: string;
  /** The group a log-out there sends `connection.close` to. */
  readonly group: string;
  /**
   * The group its user's sessions are told to check again in (`session.recheck`), when they
   * may have ended without a log-out: a password change in Django. Joined with `group`.
   */
  readonly userGroup?: string;
  /**
   * False once it names no one (or someone else); rejects when its server cannot say. With
   * `shared` (a recheck, not a handshake's), it may take the answer to a question under way for
   * another socket of the session.
   */
  isLive(options?: { shared?: boolean }): Promise<boolean>;
}

const NOBODY: Identity = Object.freeze({ user: ANONYMOUS, sessionId: null });

/** What identifying a request reads. */
export interface IdentifyOptions {
  /**
   * Accept Django's session (when `accounts.django` is given), then an access token, when no
   * session of ours names a user (WebSocket upgrades).
   */
  tokens?: boolean;
  /**
   * The client's address, as the per-address connection cap counts it: Django's view is asked
   * at most a share of its questions for one address.
   */
  client?: string;
}

/** What identifying a request reads from. */
export interface Accounts {
  /** This server's sessions. */
  sessions: SessionStore;
  /** This server's users. */
  users: UserDirectory;
  /** Access tokens, for upgrades with `tokens`. */
  tokens?: AccessTokens;
  /**
   * Django's sessions (`django_session.ts`), for upgrades with `tokens`, asked when no session
   * of ours names a user: `null` when the request carries no session it knows.
   */
  django?: { identify(request: Request, client?: string): Promise<Identity | null> };
  /**
   * Names the app shows for no account (a chat's "Anonymous", say): a Django user named so, or
   * with letters of other scripts drawn like them, is refused as one named as an account here is.
   */
  reservedUsernames?: readonly string[];
}

/**
 * Who sent `request`: the session's user while the session and the user both exist; with
 * `tokens`, else the user Django's session names, else the user of a valid access token.
 */
export async function identifyRequest(
  request: Request,
  accounts: Accounts,
  options: IdentifyOptions = {},
): Promise<Identity> {
  const fromSession = await sessionIdentity(request, accounts);
  if (fromSession.user.isAuthenticated || !options.tokens) return fromSession;
  // A cookie Django's view does not know (signed out there) leaves the token to name the user.
  const fromDjango = await djangoIdentity(request, accounts, options.client);
  if (fromDjango !== null && fromDjango.unavailable === undefined) return fromDjango;
  const fromToken = await presentedTokenIdentity(request, accounts);
  if (fromDjango === null) return fromToken ?? fromSession;
  // Django could not say: a valid token beside a stale cookie names the user without Django.
  return fromToken?.user.isAuthenticated ? fromToken : fromDjango;
}

// Who the request's access token names (or why it is refused); `null` when it presents none.
async function presentedTokenIdentity(
  request: Request,
  accounts: Accounts,
): Promise<Identity | null> {
  const token = accounts.tokens ? presentedToken(request) : null;
  if (token === null) return null;
  return await tokenIdentity(token, { tokens: accounts.tokens!, users: accounts.users });
}

// Who Django's session names, unless the name is one of ours (see `unlessOurs`).
async function djangoIdentity(
  request: Request,
  accounts: Accounts,
  client: string | undefined,
): Promise<Identity | null> {
  const identity = await accounts.django?.identify(request, client) ?? null;
  if (identity === null || !identity.user.isAuthenticated) return identity;
  return await unlessOurs(identity, accounts);
}

// A Django user whose name folds to one of this server's accounts is refused: every check that
// looks a name up (staff, a password change, presence, an account's groups) would take it for
// ours, and Django's "Admin" would get our staff "admin"'s admin socket. So is one whose name
// passes for an account's, or for a name the app shows for no account (Django's user "Server"
// writing as the chat's messages from outside do), as a sign-up here would be. Up to four store
// reads per handshake (the name, its look's hold, the holder, the Latin reading).
async function unlessOurs(
  identity: Identity,
  { users, reservedUsernames = [] }: Accounts,
): Promise<Identity> {
  const name = identity.user.username!;
  const reserved = reservedUsernames.find((shown) => lookalikeKey(shown) === lookalikeKey(name));
  if (reserved !== undefined) {
    log.warn(
      `Django's user ${JSON.stringify(name)} refused: the name passes for ` +
        `${JSON.stringify(reserved)}, which this site shows for no account; rename it in Django`,
    );
    return { ...NOBODY, conflict: "Django's user cannot connect here: its name is reserved here" };
  }
  let ours: UserRecord | null;
  try {
    ours = await users.find(name) ?? await users.lookalikeOf(name);
  } catch (error) {
    // Not known to be someone else: not opened as Django's user, to be tried again.
    log.warn(`Could not check Django's user against this server's accounts (${describe(error)})`);
    return { ...NOBODY, unavailable: "Server busy: the user store is unavailable; retry later" };
  }
  if (ours === null) return identity;
  const is = usernameKey(ours.username) === usernameKey(name) ? "is" : "passes for";
  log.warn(
    `Django's user ${JSON.stringify(name)} refused: the name ${is} this server's account ` +
      `${JSON.stringify(ours.username)}; rename one of them`,
  );
  return { ...NOBODY, conflict: "Django's user cannot connect here: an account here has its name" };
}

async function sessionIdentity(
  request: Request,
  accounts: { sessions: SessionStore; users: UserDirectory },
): Promise<Identity> {
  const sessionId = readCookies(request.headers)[SESSION_COOKIE];
  if (!sessionId) return NOBODY;
  let session, user;
  try {
    session = await accounts.sessions.get(sessionId);
    user = session && await accounts.users.find(session.username);
  } catch (error) {
    // The store is away (a Redis restart): pages keep working, as anonymous, until it is back.
    // One line, no stack: every signed-in request of the outage writes it.
    if (!isBackendUnavailable(error)) {
      log.warn("Session lookup failed; treating the request as anonymous", error);
      return { ...NOBODY, sessionUnread: true };
    }
    log.warn(
      `Session lookup failed, the store is unavailable (${describe(error)}); ` +
        "treating the request as anonymous",
    );
    return { ...NOBODY, unavailable: "Server busy: the session store is unavailable; retry later" };
  }
  if (!session || !user) return NOBODY;
  if (passwordChangedSince(session, user)) return NOBODY;
  return {
    user: Object.freeze({ username: user.username, isAuthenticated: true }),
    sessionId,
    expiresAt: session.expiresAt,
  };
}

// A session the password changed after: one a log-in made with the password before (even one
// that checked it while the change ran), or, for one made without that stamp, one older than
// the change (the change could not find it to end it). Read with the user, as every request
// reads it: no extra read.
function passwordChangedSince(session: SessionRecord, user: UserRecord): boolean {
  const changedAt = user.passwordChangedAt ?? 0;
  if (session.passwordSince !== undefined) return session.passwordSince !== changedAt;
  return session.createdAt < changedAt;
}

async function tokenIdentity(
  token: string,
  accounts: { tokens: AccessTokens; users: UserDirectory },
): Promise<Identity> {
  let user, claims;
  try {
    const check = await accounts.tokens.verify(token);
    if (!check.ok) return { ...NOBODY, refused: check.reason };
    claims = check.claims;
    user = await accounts.users.find(claims.username);
  } catch (error) {
    // Never the token in the message: log lines are read by more people than tokens should be.
    if (!isBackendUnavailable(error)) {
      log.warn("Token check failed: the store did not answer", error);
      return {
        ...NOBODY,
        refused: "Token could not be checked: try again later",
        refusedForNow: true,
      };
    }
    log.warn(`Token check failed, the store is unavailable (${describe(error)})`);
    return { ...NOBODY, unavailable: "Token could not be checked: try again later" };
  }
  if (user === null) return { ...NOBODY, refused: "Token's user no longer exists" };
  return {
    user: Object.freeze({ username: user.username, isAuthenticated: true }),
    sessionId: null,
    tokenId: claims.tokenId,
    expiresAt: claims.expiresAt,
  };
}

// An error's class and message, on one line: what an operator needs of an outage, not a stack.
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // node-redis leaves `name` at "Error": its class says which failure it was.
  return `${error.constructor?.name || error.name}: ${error.message}`;
}
