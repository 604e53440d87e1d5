/**
 * A connection's call that fails with nobody awaiting it (`conn.groupAdd(name)` in `connect`,
 * the `await` forgotten): Deno ends the process on an unhandled rejection, so one missing
 * `await` and a client that picks a group name too long would drop every socket of the
 * server. Such a failure fails its own connection instead (1011, logged), as a hook that
 * throws does; any other unhandled rejection keeps Deno's behaviour.
 */
import { shownClient } from "./_shown_client.ts";
import type { Connection } from "./consumer.ts";
import { log } from "../telemetry/log.ts";

interface Owner {
  conn: Connection;
  call: string;
  /** Said and failed already: the reason may reach several promises nobody handles. */
  told: boolean;
}

// Made only when a call fails. By the promise the call returned (left unhandled itself), and by
// its reason (for a `.then` of it left unhandled), unless calls of several connections failed
// with one reason: which of them forgot its `await` cannot be told then.
const byPromise = new WeakMap<Promise<unknown>, Owner>();
const byReason = new WeakMap<object, Owner | "several">();
let failConnection: ((conn: Connection, error: unknown) => void) | null = null;

/**
 * `promise`, which rejects as it does; a rejection nobody handles then fails `conn` (its
 * `call`) through `fail` rather than the process.
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
  const returned: Promise<T> = promise.catch((error) => {
    const owner: Owner = { conn, call, told: false };
    byPromise.set(returned, owner);
    if (typeof error === "object" && error !== null) {
      const known = byReason.get(error);
      const same = known === undefined || (known !== "several" && known.conn === conn);
      byReason.set(error, same ? owner : "several");
    }
    throw error;
  });
  return returned;
}

function failOwnConnection(event: PromiseRejectionEvent): void {
  const reason = event.reason;
  const byIts = typeof reason === "object" && reason !== null ? byReason.get(reason) : undefined;
  const owner = byPromise.get(event.promise) ?? (byIts === "several" ? undefined : byIts);
  if (owner === undefined) {
    if (byIts !== "several") return; // not a connection's call: Deno's own behaviour
    event.preventDefault();
    log.warn(
      "A call of several sockets failed with one error and nothing awaited one of them " +
        "(a missing await?); none is closed for it",
      reason,
    );
    return;
  }
  event.preventDefault();
  if (owner.told) return;
  owner.told = true;
  const { conn, call } = owner;
  log.warn(
    `conn.${call}() failed on ${conn.scope.path} [${
      shownClient(conn.scope.client, conn.scope.peer)
    }] and nothing awaited it ` +
      "(a missing await?)",
  );
  failConnection!(conn, reason);
}
