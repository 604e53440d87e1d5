/**
 * A connection's call that fails with nobody awaiting it (`conn.groupAdd(name)` in `connect`,
 * the `await` forgotten): Deno ends the process on an unhandled rejection, so one missing
 * `await` and a client that picks a group name too long would drop every socket of the
 * server. Such a failure fails its own connection instead (1011, logged), as a hook that
 * throws does; any other unhandled rejection keeps Deno's behaviour.
 */
import type { Connection } from "./consumer.ts";
import { log } from "../telemetry/log.ts";

// By the rejection's reason: the connection whose call failed, which call, and whether that
// was told (the reason may reach several promises nobody handles: two `.then`s of one call).
const owners = new WeakMap<object, { conn: Connection; call: string; told: boolean }>();
let failConnection: ((conn: Connection, error: unknown) => void) | null = null;

/**
 * `promise`, which rejects as it does, its reason remembered as `conn`'s `call`: a rejection
 * nobody handles then fails `conn` through `fail` rather than the process.
 */
export function failingItsConnection<T>(
  promise: Promise<T>,
  conn: Connection,
  call: string,
  fail: (conn: Connection, error: unknown) => void,
): Promise<T> {
  if (failConnection === null) {
    failConnection = fail;
    globalThis.addEventListener("unhandledrejection", failOwnConnection);
  }
  return promise.catch((error) => {
    // The first call it failed names it (one layer error may fail calls of many connections).
    if (typeof error === "object" && error !== null && !owners.has(error)) {
      owners.set(error, { conn, call, told: false });
    }
    throw error;
  });
}

function failOwnConnection(event: PromiseRejectionEvent): void {
  const owner = owners.get(event.reason);
  if (owner === undefined) return;
  event.preventDefault();
  if (owner.told) return;
  owner.told = true;
  const { conn, call } = owner;
  log.warn(
    `conn.${call}() failed on ${conn.scope.path} [${conn.scope.client}] and nothing awaited it ` +
      "(a missing await?)",
  );
  failConnection!(conn, event.reason);
}
