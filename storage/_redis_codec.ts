/**
 * How the Redis store writes keys and values.
 *
 * A key path is written as its parts, each escaped and ended by U+0000, so that the byte order
 * of the encoded strings (Redis compares members with `memcmp`) is the element-wise order of
 * the paths, which is Deno KV's order for string parts.
 *
 * Values are JSON, with `Date`, `Uint8Array` and `bigint` kept as tagged objects so they come
 * back as they went in (Deno KV keeps them too).
 */
import type { StoreKey } from "./store.ts";

const END = "\u0000";
const ESCAPE = "\u0001";

/** The encoded form of a key path. */
export function encodeKey(key: StoreKey): string {
  let encoded = "";
  for (const part of key) {
    if (typeof part !== "string") throw new TypeError("Store key parts must be strings");
    encoded += part.replaceAll(ESCAPE, `${ESCAPE}\u0002`).replaceAll(END, `${ESCAPE}${ESCAPE}`) +
      END;
  }
  return encoded;
}

/** The key path an encoded key stands for. */
export function decodeKey(encoded: string): string[] {
  const parts = encoded.split(END);
  parts.pop(); // the text after the last terminator is empty
  return parts.map((part) =>
    part.replaceAll(`${ESCAPE}${ESCAPE}`, END).replaceAll(`${ESCAPE}\u0002`, ESCAPE)
  );
}

/** Every proper, non-empty prefix of a key, encoded: the indexes an entry is listed in. */
export function encodedPrefixes(key: StoreKey): string[] {
  const prefixes: string[] = [];
  for (let length = 1; length < key.length; length++) {
    prefixes.push(encodeKey(key.slice(0, length)));
  }
  return prefixes;
}

/**
 * The Redis key names of one store. On one server (or through Sentinels) they are
 * `<prefix>:kv:<key>`, `<prefix>:idx:<key prefix>` and `<prefix>:expiring`. On a Cluster, what
 * one write touches (the value, its indexes, the expiring set) must share a hash slot, so every
 * name carries the hash tag of the key's first part: `{<prefix>:<first part>}:kv:<key>`, and so
 * on, with one expiring set per first part, listed in `{<prefix>:store}:expiring-parts` for the
 * sweep. A listing never crosses first parts (its prefix is never empty), so it reads one slot.
 */
export class StoreKeys {
  #prefix: string;
  #cluster: boolean;

  /** Names for the store under `prefix`, tagged for a Cluster when `cluster` is true. */
  constructor(prefix: string, cluster: boolean) {
    this.#prefix = prefix;
    this.#cluster = cluster;
  }

  /** Whether names carry hash tags (a Cluster). */
  get cluster(): boolean {
    return this.#cluster;
  }

  /** The value of an encoded key. */
  data(member: string): string {
    return `${this.#base(firstPart(member))}:kv:${member}`;
  }

  /** The index of a key prefix (what `list` reads). */
  index(prefix: StoreKey): string {
    return `${this.#base(prefix[0])}:idx:${encodeKey(prefix)}`;
  }

  /** Every index a key is listed in. */
  indexes(key: StoreKey): string[] {
    const base = this.#base(key[0]);
    return encodedPrefixes(key).map((prefix) => `${base}:idx:${prefix}`);
  }

  /** The set of expiring keys that share the first part `first` (one set without a Cluster). */
  expiring(first: string): string {
    return `${this.#base(first)}:expiring`;
  }

  /** Cluster only: the set of first parts that have an expiring set. */
  expiringParts(): string {
    return `{${this.#prefix}:store}:expiring-parts`;
  }

  #base(first: string): string {
    return this.#cluster ? `{${this.#prefix}:${first}}` : this.#prefix;
  }
}

/** The first part of an encoded key. */
export function firstPart(member: string): string {
  return decodeKey(member.slice(0, member.indexOf(END) + 1))[0] ?? "";
}

const TAG = "$store";

/** Serialises a value. */
export function encodeValue(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, name, plain) {
    const original = this[name];
    if (original instanceof Date) return { [TAG]: "date", value: original.toISOString() };
    if (original instanceof Uint8Array) return { [TAG]: "bytes", value: toBase64(original) };
    if (typeof original === "bigint") return { [TAG]: "bigint", value: original.toString() };
    return plain;
  });
}

/** Parses a value written by {@linkcode encodeValue}. */
export function decodeValue<T>(text: string): T {
  return JSON.parse(text, (_name, value) => {
    if (value === null || typeof value !== "object" || typeof value[TAG] !== "string") {
      return value;
    }
    switch (value[TAG]) {
      case "date":
        return new Date(value.value);
      case "bytes":
        return fromBase64(value.value);
      case "bigint":
        return BigInt(value.value);
      default:
        return value;
    }
  }) as T;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
