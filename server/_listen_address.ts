/**
 * A listener's address: its URL, why it could not be listened on, named by the setting that gave
 * it (`HOST` and `PORT`, `METRICS_ADDRESS`), and the check and the hold `--workers` makes before
 * its Workers bind with `reusePort`.
 */
import { type DataDirLock, holdLockFile } from "../storage/data_dir_lock.ts";
import { join } from "../storage/platform_path.ts";

/** `http://host:port` of a listener's address (an IPv6 host in brackets). */
export function urlOf(addr: { hostname: string; port: number }): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}`;
}

/** `error` from listening on the address of `what` (e.g. "HOST and PORT: 0.0.0.0:8000"). */
export function listenError(error: unknown, what: string): Error {
  if (error instanceof Deno.errors.AddrInUse) {
    return new Error(`The address of ${what} is in use by another program`, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`The address of ${what} cannot be listened on: ${reason}`, { cause: error });
}

/**
 * Throws {@linkcode listenError} unless `hostname:port` can be bound now. Workers bind with
 * `reusePort`, which the kernel grants beside another server that did too (a second
 * `--workers` instance on the same port): the two would split the clients without a word. A
 * plain bind is refused while any socket holds the port.
 */
export function assertAddressFree(hostname: string, port: number, what: string): void {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname, port });
  } catch (error) {
    throw listenError(error, what);
  }
  listener.close();
}

// What another pool holds the port with.
class PortHeld extends Error {}

/**
 * Holds `hostname:port` for this process's pool of Workers until `close`: two pools started at one moment
 * would both find it free (`assertAddressFree`), then both bind it with `reusePort`, and the
 * kernel would share the clients between servers that know nothing of each other. The hold is a
 * lock file named after the address in the system's temporary directory; where none can be made
 * (another user's file), nothing is held, and the check stands alone.
 */
export async function holdPoolPort(
  hostname: string,
  port: number,
  what: string,
): Promise<DataDirLock> {
  // By address and port: pools on two addresses of one machine share no clients.
  const address = `${hostname.replace(/[^A-Za-z0-9.-]/g, "_")}-${port}`;
  const path = join(Deno.env.get("TMPDIR") || "/tmp", `channels-deno-port-${address}.lock`);
  let lock: DataDirLock;
  try {
    lock = await holdLockFile(
      path,
      (holder) =>
        new PortHeld(`The address of ${what} is in use by another --workers server${holder}`),
    );
  } catch (error) {
    if (error instanceof PortHeld) throw error;
    return { close: () => {} };
  }
  // Let go once, by whichever stop comes first (the pool's, or a start that failed).
  let held = true;
  return {
    close: () => {
      if (held) lock.close();
      held = false;
    },
  };
}
