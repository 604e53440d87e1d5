/**
 * Access tokens for clients that are not browsers (a terminal client, a script): a signed,
 * expiring string a WebSocket client presents as `Authorization: Bearer <token>` or
 * `?token=<token>`, standing for the user as a session cookie does.
 *
 * A token is `<payload>.<signature>`: the payload is `{username, tokenId, expiresAt}` as
 * base64url JSON, the signature its HMAC-SHA256 (WebCrypto), compared in constant time. Each
 * token also has a record in the {@linkcode Store} under `["tokens", <username key>,
 * <tokenId>]`, so revoking (deleting the records) holds across every process on that store.
 *
 * The signing secret is `TOKEN_SECRET`; when unset, one is generated at first use and kept in
 * the store, so all processes sharing the store agree and a restart keeps tokens valid.
 *
 * @example
 * ```ts
 * import { AccessTokens, type Store } from "@channels/deno";
 *
 * declare const store: Store;
 * const tokens = new AccessTokens(store, { maxAgeSeconds: 30 * 24 * 3600 });
 * const { token } = await tokens.create("ada");
 * const check = await tokens.verify(token); // { ok: true, claims: { username: "ada", ... } }
 * await tokens.revokeAll("ada");
 * (await tokens.verify(token)).ok; // false: "Token revoked"
 * ```
 */
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";
import type { Store, StoreKey } from "../storage/store.ts";
import { lowerCaseUsernameKey } from "./account_rules.ts";
import { revocationStamp } from "./token_revocations.ts";

/** What a token says. Times are milliseconds since the epoch. */
export interface TokenClaims {
  /** The user the token stands for. */
  username: string;
  /** Names the token's record in the store, so it can be revoked. */
  tokenId: string;
  /** When the token stops being accepted. */
  expiresAt: number;
}

/** A token just made: shown to its user once, never stored or logged. */
export interface IssuedToken extends TokenClaims {
  /** The token itself, `<payload>.<signature>`. */
  token: string;
}

/** A live token as its user's token page lists it (without the token itself). */
export interface TokenSummary {
  /** The token's id. */
  tokenId: string;
  /** When it was made. */
  createdAt: number;
  /** When it expires. */
  expiresAt: number;
}

/** The verdict on a presented token: its claims, or why it is refused. */
export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

/** How tokens are made and checked. */
export interface AccessTokensOptions {
  /** How long a new token lives, in seconds. */
  maxAgeSeconds: number;
  /** The signing secret; empty or absent: generated once and kept in the store. */
  secret?: string;
  /** The clock (tests move it). */
  now?: () => number;
  /** Compares two signatures; constant-time by default (tests watch it being used). */
  compare?: (a: Uint8Array, b: Uint8Array) => boolean;
  /**
   * The most live tokens one user may hold (default {@linkcode MAX_TOKENS_PER_USER}): each
   * is a record kept for `maxAgeSeconds`, and the tokens page lists them all.
   */
  maxPerUser?: number;
}

/** How many live tokens one user may hold by default, as django-rest-knox's `TOKEN_LIMIT_PER_USER`. */
export const MAX_TOKENS_PER_USER = 100;

/** Refused by {@linkcode AccessTokens.create}: the user holds as many live tokens as allowed. */
export class TooManyTokensError extends Error {
  /** The most live tokens a user may hold. */
  readonly limit: number;
  /** Says the limit, and how to make room. */
  constructor(limit: number) {
    super(`At most ${limit} live access tokens per user: revoke them, or wait for some to expire`);
    this.name = "TooManyTokensError";
    this.limit = limit;
  }
}

const TOKENS = "tokens";
const SECRET_KEY: StoreKey = ["secrets", "token_signing"];
const MAX_TOKEN_LENGTH = 1024;
/** How often a bad signature may make a process read the shared secret again. */
const SECRET_RECHECK_MS = 5000;
// A 43-character signature is 32 bytes (SHA-256) in base64url without padding.
const TOKEN_PATTERN = /^([A-Za-z0-9_-]{1,900})\.([A-Za-z0-9_-]{43})$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Makes, checks, lists and revokes access tokens. */
export class AccessTokens {
  /** How long a new token lives, in seconds. */
  readonly maxAgeSeconds: number;
  #store: Store;
  #secret: string;
  #now: () => number;
  #compare: (a: Uint8Array, b: Uint8Array) => boolean;
  #maxPerUser: number;
  #key: Promise<CryptoKey> | null = null;
  /** When the shared secret was last read from the store. */
  #keyReadAt = 0;

  /** Keeps token records (and, without `secret`, the generated secret) in `store`. */
  constructor(store: Store, options: AccessTokensOptions) {
    this.#store = store;
    this.maxAgeSeconds = options.maxAgeSeconds;
    this.#secret = options.secret ?? "";
    this.#now = options.now ?? Date.now;
    this.#compare = options.compare ?? timingSafeEqual;
    this.#maxPerUser = options.maxPerUser ?? MAX_TOKENS_PER_USER;
  }

  /**
   * Makes a token for `username` (the caller has checked the user exists); rejects with
   * {@linkcode TooManyTokensError} when the user holds `maxPerUser` live tokens already (two
   * made at the same moment may both pass: the cap is checked, not locked).
   */
  async create(username: string): Promise<IssuedToken> {
    if ((await this.list(username)).length >= this.#maxPerUser) {
      throw new TooManyTokensError(this.#maxPerUser);
    }
    const createdAt = this.#now();
    const claims: TokenClaims = {
      username,
      tokenId: randomId(16),
      expiresAt: createdAt + this.maxAgeSeconds * 1000,
    };
    const record = { createdAt, expiresAt: claims.expiresAt };
    await this.#store.set(recordKey(claims), record, { expireInMs: this.maxAgeSeconds * 1000 });
    // Signed with the secret the store holds now, not one this process read before: a store that
    // lost it (Redis restarted empty) has another by now, or takes one, and every process
    // checks with that one. Making a token is rare; it is one read more.
    if (!this.#secret) this.#key = null;
    const payload = toBase64url(encoder.encode(JSON.stringify(claims)));
    const signature = toBase64url(await this.#sign(payload));
    return { ...claims, token: `${payload}.${signature}` };
  }

  /**
   * Checks a presented token: its form, its signature, its expiry, then that its record is
   * still in the store (not revoked). The reasons are safe to log: they never quote the token.
   */
  async verify(token: string): Promise<TokenCheck> {
    const match = token.length <= MAX_TOKEN_LENGTH ? TOKEN_PATTERN.exec(token) : null;
    if (match === null) return refused("Malformed token");
    const [, payload, signature] = match;
    const given = signatureBytes(signature);
    if (given === null) return refused("Bad token signature");
    if (
      !this.#compare(await this.#sign(payload), given) &&
      !await this.#signedWithNewSecret(payload, given)
    ) {
      return refused("Bad token signature");
    }
    const claims = parseClaims(payload);
    if (claims === null) return refused("Malformed token");
    if (claims.expiresAt <= this.#now()) return refused("Token expired");
    if (await this.#store.get(recordKey(claims)) === null) return refused("Token revoked");
    return { ok: true, claims };
  }

  /** The user's live tokens, oldest first. */
  async list(username: string): Promise<TokenSummary[]> {
    const now = this.#now();
    const entries = await this.#store.list<Omit<TokenSummary, "tokenId">>(userPrefix(username));
    return entries
      .filter((entry) => entry.value.expiresAt > now) // the store's expiry may be lazy
      .map((entry) => ({ tokenId: entry.key[entry.key.length - 1], ...entry.value }))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Revokes every token of `username`; resolves with how many were live. The records go first,
   * then a new revocation stamp (see `token_revocations.ts`): a server that reads the stamp
   * finds the records gone. Closing the sockets open with them is `closeTokenSockets`'s job.
   */
  async revokeAll(username: string): Promise<number> {
    const entries = await this.#store.list(userPrefix(username));
    if (entries.length === 0) return 0;
    await this.#store.writeMany([
      ...entries.map((entry) => ({ key: entry.key, delete: true as const })),
      revocationStamp(),
    ]);
    return entries.length;
  }

  /**
   * True while the token's record is in the store: false once it was revoked (or it expired).
   * What a socket opened with the token reads again when a revoke's close may have missed it.
   */
  async isLive(claims: Pick<TokenClaims, "username" | "tokenId">): Promise<boolean> {
    return await this.#store.get(recordKey(claims)) !== null;
  }

  // A shared secret may have changed under this process: a store that lost it (Redis restarted
  // empty) got a new one from whoever asked first (`deno task token`). Read again, but at most
  // every SECRET_RECHECK_MS, so bad signatures cannot make every handshake read the store.
  async #signedWithNewSecret(payload: string, given: Uint8Array): Promise<boolean> {
    if (this.#secret || this.#now() - this.#keyReadAt < SECRET_RECHECK_MS) return false;
    this.#key = null;
    return this.#compare(await this.#sign(payload), given);
  }

  async #sign(payload: string): Promise<Uint8Array> {
    const key = await (this.#key ??= this.#importKey().catch((error) => {
      this.#key = null; // a store that was away is asked again next time
      throw error;
    }));
    return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(payload)));
  }

  async #importKey(): Promise<CryptoKey> {
    this.#keyReadAt = this.#now();
    const secret = this.#secret || await this.#sharedSecret();
    return await crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  // `create` writes only when no process has yet: whoever wins, every process reads the same.
  async #sharedSecret(): Promise<string> {
    const kept = await this.#store.get<string>(SECRET_KEY);
    if (typeof kept === "string" && kept !== "") return kept;
    await this.#store.create(SECRET_KEY, randomId(32));
    const secret = await this.#store.get<string>(SECRET_KEY);
    if (typeof secret !== "string" || secret === "") {
      throw new Error("Could not keep the token signing secret in the store");
    }
    return secret;
  }
}

/**
 * The token of `Authorization: Bearer <token>`, or `null` when the request has none: the one
 * rule for every endpoint that takes a bearer token (users' tokens, `/metrics`, `/_send/`).
 * The scheme's case and the whitespace after it are free, as most clients and Django REST
 * framework take them.
 */
export function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  const match = header === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match === null ? null : match[1];
}

/**
 * The token a request presents: `Authorization: Bearer <token>`, else the `token` query
 * parameter; `null` when it presents none.
 */
export function presentedToken(request: Request, url: URL = new URL(request.url)): string | null {
  return bearerToken(request) ?? (url.searchParams.get("token") || null);
}

/**
 * The path and query of `url` for a log line, with the value of any `token` parameter
 * replaced by `[redacted]`: `/ws/chat/lobby/?token=[redacted]&x=1`. A token inside another
 * value (a `next` that encodes `?token=...`, at any depth of encoding) is found by its shape.
 */
export function redactedTarget(url: URL): string {
  if (url.search === "") return url.pathname;
  const parts = url.search.slice(1).split("&").map((part) => {
    const name = part.split("=", 1)[0];
    if (decodeName(name).toLowerCase() === "token") return `${name}=[redacted]`;
    return part.replace(BASE64URL_RUN, redactTokens);
  });
  return `${url.pathname}?${parts.join("&")}`;
}

// A token's payload is base64url JSON that opens with `{"` ("eyJ"), then its dot and signature
// (43 characters): none of these characters is percent-encoded, so it reads the same however
// often it was. Looked for run by run, and each run once: a regular expression for the whole
// shape tries again from every "eyJ" to the next dot, which a query of "eyJeyJ…" (64 KB, with no
// dot) made a second of work per request.
const BASE64URL_RUN = /[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*/g;
const SIGNATURE_LENGTH = 43;

// `run` with each token in it (from its first "eyJ" before a dot, to 43 characters after the
// dot) replaced by `[redacted]`.
function redactTokens(run: string): string {
  if (!run.includes("eyJ") || !run.includes(".")) return run;
  const pieces = run.split(".");
  let done = "";
  let head = pieces[0]; // what comes before the next dot, not yet written out
  for (const next of pieces.slice(1)) {
    const start = head.indexOf("eyJ");
    if (start >= 0 && next.length >= SIGNATURE_LENGTH) {
      done += `${head.slice(0, start)}[redacted]`;
      head = next.slice(SIGNATURE_LENGTH);
    } else {
      done += `${head}.`;
      head = next;
    }
  }
  return done + head;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    return name;
  }
}

function refused(reason: string): TokenCheck {
  return { ok: false, reason };
}

function parseClaims(payload: string): TokenClaims | null {
  try {
    const value = JSON.parse(decoder.decode(fromBase64url(payload)));
    const { username, tokenId, expiresAt } = value ?? {};
    if (typeof username !== "string" || username === "") return null;
    if (typeof tokenId !== "string" || tokenId === "") return null;
    if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) return null;
    return { username, tokenId, expiresAt };
  } catch {
    return null;
  }
}

function userPrefix(username: string): StoreKey {
  return [TOKENS, lowerCaseUsernameKey(username)];
}

function recordKey(claims: Pick<TokenClaims, "username" | "tokenId">): StoreKey {
  return [...userPrefix(claims.username), claims.tokenId];
}

function randomId(bytes: number): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function toBase64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

// The signature's bytes; `null` unless `text` is their one spelling: a loose decode ignores the
// unused low bits of the last character, so four spellings gave the same 32 bytes.
function signatureBytes(text: string): Uint8Array | null {
  try {
    const bytes = fromBase64url(text);
    return toBase64url(bytes) === text ? bytes : null;
  } catch {
    return null;
  }
}

function fromBase64url(text: string): Uint8Array {
  return Uint8Array.fromBase64(text, { alphabet: "base64url" });
}
