/**
 * Password hashing: PBKDF2-HMAC-SHA256 through Web Crypto, in Django's format
 * `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`, so the parameters travel with each hash
 * and can be raised later ({@linkcode PasswordHasher.needsRehash}). As in Django, the salt is
 * text and its UTF-8 bytes are the PBKDF2 salt, so hashes made by Django verify here too.
 *
 * `crypto.subtle.deriveBits` runs on Deno's blocking thread pool: a 600,000-iteration hash
 * takes a few hundred milliseconds without stopping the event loop.
 *
 * @example
 * ```ts
 * const hasher = new PasswordHasher();
 * const encoded = await hasher.hash("correct horse");
 * await hasher.verify("correct horse", encoded); // true
 * ```
 */
import { timingSafeEqual } from "@std/crypto/timing-safe-equal";

/** The fewest iterations allowed outside tests (OWASP's figure for PBKDF2-HMAC-SHA256). */
export const MIN_PASSWORD_ITERATIONS = 600_000;
/** The algorithm name at the start of every encoded hash. */
export const PBKDF2_ALGORITHM = "pbkdf2_sha256";

/**
 * The most iterations allowed: a stored hash claiming more is refused rather than run (it would
 * stall a thread for minutes).
 */
export const MAX_PASSWORD_ITERATIONS = 100_000_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const encoder = new TextEncoder();

/** How a hasher is set up. */
export interface PasswordHasherOptions {
  /** Iterations for new hashes; default and minimum {@linkcode MIN_PASSWORD_ITERATIONS}. */
  iterations?: number;
  /** Tests only: allow fewer iterations than the minimum. */
  allowWeak?: boolean;
}

/** The parts of an encoded hash. */
export interface DecodedHash {
  algorithm: string;
  iterations: number;
  salt: string;
  hash: Uint8Array;
}

/** Hashes and verifies passwords. */
export class PasswordHasher {
  readonly iterations: number;
  // The most iterations of any stored hash this hasher has checked. A hash made with more
  // than `iterations` (Django 5.2 makes 1,000,000; or `PASSWORD_ITERATIONS` was lowered)
  // takes longer to check: every refusal is padded to it, so neither an unknown username nor
  // a known one's wrong password answers sooner than the slowest wrong password seen.
  #slowestSeen = 0;

  constructor(options: PasswordHasherOptions = {}) {
    const iterations = options.iterations ?? MIN_PASSWORD_ITERATIONS;
    const min = options.allowWeak ? 1 : MIN_PASSWORD_ITERATIONS;
    if (!Number.isInteger(iterations) || iterations < min || iterations > MAX_PASSWORD_ITERATIONS) {
      throw new RangeError(
        `Password iterations must be a whole number from ${min} to ${MAX_PASSWORD_ITERATIONS}, got ${iterations}`,
      );
    }
    this.iterations = iterations;
  }

  /** A new encoded hash of `password` with a fresh random salt. */
  async hash(password: string): Promise<string> {
    const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES))
      .toBase64({ alphabet: "base64url", omitPadding: true });
    const derived = await pbkdf2(password, salt, this.iterations, HASH_BYTES);
    return `${PBKDF2_ALGORITHM}$${this.iterations}$${salt}$${derived.toBase64()}`;
  }

  /**
   * True when `password` matches `encoded`; false for a malformed or tampered hash. A wrong
   * password takes as long as {@linkcode verifyDummy}: a hash with fewer iterations than the
   * slowest so far is padded up to it, so that its user cannot be told from an unknown one
   * (until each user logs in again and the hash is upgraded).
   */
  async verify(password: string, encoded: string): Promise<boolean> {
    const decoded = decodeHash(encoded);
    if (decoded === null) {
      await this.verifyDummy(password);
      return false;
    }
    this.#slowestSeen = Math.max(this.#slowestSeen, decoded.iterations);
    const derived = await pbkdf2(password, decoded.salt, decoded.iterations, decoded.hash.length);
    if (timingSafeEqual(derived, decoded.hash)) return true;
    const missing = this.#refusalIterations() - decoded.iterations;
    if (missing > 0) await pbkdf2(password, "dummy-salt", missing, HASH_BYTES);
    return false;
  }

  /**
   * Runs as long as a wrong password's {@linkcode verify} and always fails: used for unknown
   * usernames, so they take as long as a wrong password, however many iterations its hash had.
   */
  async verifyDummy(password: string): Promise<false> {
    const derived = await pbkdf2(password, "dummy-salt", this.#refusalIterations(), HASH_BYTES);
    timingSafeEqual(derived, new Uint8Array(HASH_BYTES));
    return false;
  }

  // What every refusal costs: the configured count, or a slower stored hash's.
  #refusalIterations(): number {
    return Math.max(this.iterations, this.#slowestSeen);
  }

  /** True when `encoded` was made with other parameters than this hasher's. */
  needsRehash(encoded: string): boolean {
    const decoded = decodeHash(encoded);
    return decoded === null || decoded.iterations !== this.iterations ||
      decoded.hash.length !== HASH_BYTES;
  }
}

/** Splits an encoded hash into its parts, or `null` when it is not one this module reads. */
export function decodeHash(encoded: string): DecodedHash | null {
  const parts = encoded.split("$");
  if (parts.length !== 4) return null;
  const [algorithm, rounds, salt, hashText] = parts;
  if (algorithm !== PBKDF2_ALGORITHM || !/^[1-9][0-9]{0,8}$/.test(rounds) || salt === "") {
    return null;
  }
  const iterations = Number(rounds);
  if (iterations > MAX_PASSWORD_ITERATIONS) return null;
  let hash: Uint8Array;
  try {
    hash = Uint8Array.fromBase64(hashText);
  } catch {
    return null;
  }
  if (hash.length < 16 || hash.length > 64) return null;
  return { algorithm, iterations, salt, hash };
}

async function pbkdf2(
  password: string,
  salt: string,
  iterations: number,
  bytes: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(salt), iterations },
    key,
    bytes * 8,
  );
  return new Uint8Array(bits);
}
