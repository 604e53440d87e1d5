/**
 * Signed-in sockets that another process may end without reaching them: on a layer that lives
 * inside the server (`memory`, `broadcast`), `deno task token --revoke-all` or
 * `deno task changepassword` deletes records in the store, but its `connection.close` reaches no
 * socket of the server's. A watch reads the store's stamp for such changes (`storage/stamps.ts`)
 * every few seconds, only while it has sockets, and when it changed, reads again the record of
 * each binding (a token, a session) its sockets were opened with, closing those of a binding
 * gone.
 */
import type { WebSocketConnection } from "./_connection.ts";
import { type BindingState, closeOfEnded } from "./_bound_socket.ts";
import { log } from "../telemetry/log.ts";

/** What a watch reads, and how it closes what ended. */
export interface StampWatchOptions<B> {
  /** The stamp, or `null` while nothing changed it; rejects when the store cannot say. */
  readStamp(): Promise<string | null>;
  /** Reads the binding's record; rejects when the store cannot say. */
  read(binding: B): Promise<BindingState>;
  /** How often the stamp is read while there are sockets: a change closes them within this long. */
  checkEveryMs: number;
  /** The reason its sockets close with (4001; a renewed session's: 4002, "Session renewed"). */
  reason: string;
  /** What the warning of a failed read names: "the token revocations". */
  what: string;
}

/** The sockets of one kind of binding, watched through one stamp. */
export class StampWatch<B> {
  #options: StampWatchOptions<B>;
  /** The open sockets by binding: a check reads each binding's record once, however many. */
  #byKey = new Map<string, { binding: B; sockets: Set<WebSocketConnection> }>();
  #sockets = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped when the checks start or stop: a read under way then knows whether it is wanted. */
  #round = 0;
  /** Resolves once the checks that began with the first socket have their first stamp. */
  #started: Promise<void> | null = null;
  /** The stamp the bindings were last known live under; `undefined`: read them all next check. */
  #stampSeen: string | null | undefined = undefined;
  /** Bumped by each {@linkcode readAllNextCheck}: a check under way then keeps no stamp. */
  #readAllAsked = 0;
  #failing = false;

  /** A watch that reads and closes as `options` say. */
  constructor(options: StampWatchOptions<B>) {
    this.#options = options;
  }

  /**
   * Watches `conn`, opened with `binding` (known by `key`), until it finishes. Resolves once a
   * change from then on is sure to be seen: read the binding's record again after that, and a
   * change that ended it is either in that read or moves the stamp this watch has.
   */
  async add(conn: WebSocketConnection, key: string, binding: B): Promise<void> {
    const bound = this.#byKey.get(key);
    if (bound === undefined) this.#byKey.set(key, { binding, sockets: new Set([conn]) });
    else bound.sockets.add(conn);
    this.#sockets++;
    const started = this.#started ??= this.#start(++this.#round);
    // After the start: a connection finished already is forgotten at once, and its forgetting
    // stops the checks it started.
    conn.onFinished(() => this.#forget(conn, key));
    await started;
  }

  /**
   * Makes the next check read every binding again, whatever the stamp: for a socket whose
   * handshake could not read its record again after it was added, so a change may be in neither.
   */
  readAllNextCheck(): void {
    this.#stampSeen = undefined;
    this.#readAllAsked++;
  }

  // The stamp as the first socket joins: the checks read only the bindings a change after it
  // may have ended, not every one a first time (thousands, after a restart).
  async #start(round: number): Promise<void> {
    const asked = this.#readAllAsked;
    try {
      const stamp = await this.#options.readStamp();
      if (round === this.#round && asked === this.#readAllAsked) this.#stampSeen = stamp;
    } catch (error) {
      // The first check reads every binding instead.
      log.warn(`Could not read ${this.#options.what}; trying again`, error);
    }
    if (round === this.#round) this.#nextCheck(round);
  }

  #forget(conn: WebSocketConnection, key: string): void {
    const sockets = this.#byKey.get(key)?.sockets;
    if (sockets?.delete(conn) !== true) return;
    this.#sockets--;
    if (sockets.size === 0) this.#byKey.delete(key);
    if (this.#sockets > 0) return;
    // No socket left: nothing to read the store for.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#started = null;
    this.#round++;
    this.#stampSeen = undefined;
  }

  #nextCheck(round: number): void {
    this.#timer = setTimeout(() => void this.#check(round), this.#options.checkEveryMs);
    // Not a reason to keep the process up: a stop closes the sockets anyway.
    Deno.unrefTimer(this.#timer);
  }

  // One read of the store per round while nothing changed, however many sockets are open;
  // after a change anywhere, one more per binding its sockets were opened with.
  async #check(round: number): Promise<void> {
    const asked = this.#readAllAsked;
    try {
      const stamp = await this.#options.readStamp();
      if (stamp !== this.#stampSeen) {
        await this.#closeEnded(round);
        // Only once every binding was read: a read that failed is made again next round. And
        // not when a socket asked for all to be read meanwhile: it may be past this read's list.
        if (round === this.#round && asked === this.#readAllAsked) this.#stampSeen = stamp;
      }
      this.#failing = false;
    } catch (error) {
      // Said once per outage, not every round.
      if (!this.#failing) log.warn(`Could not read ${this.#options.what}; trying again`, error);
      this.#failing = true;
    }
    if (round !== this.#round) return;
    this.#nextCheck(round);
  }

  // The stamp was read first, and a change deletes its records before it writes the stamp: a
  // change that moved it is seen here, and one that comes after moves it again.
  async #closeEnded(round: number): Promise<void> {
    for (const { binding, sockets } of [...this.#byKey.values()]) {
      if (round !== this.#round) return;
      const state = await this.#options.read(binding);
      if (state === "live") continue;
      // Renewed: a check that fell between the renewal's delete and its close says what it says.
      const [code, reason] = closeOfEnded(state, this.#options.reason);
      for (const conn of [...sockets]) conn.close(code, reason);
    }
  }
}
