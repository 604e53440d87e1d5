/**
 * A connection's hooks, run one at a time in arrival order: what arrives while a hook runs waits
 * here, up to the route's channel capacity, and runs after it, synchronously for as long as each
 * task is synchronous (no async function and no promise per frame in the usual case).
 *
 * Its owner runs a hook inline when nothing runs (`begin`, then `continueAfter` with what the
 * hook returned), and queues one otherwise (`enqueue`). A task that throws or rejects fails its
 * owner through the function given at construction, shared by every connection (a closure per
 * socket would be memory per idle socket).
 */

/** A frame or an event waiting for the hooks to be free. */
export type Task = () => void | Promise<void>;

/** A connection's hook queue; see the module's doc. */
export class HookQueue<Owner> {
  #running = false;
  /** Waiting tasks; `null` until the first one (no array per socket that never queues). */
  #tasks: Task[] | null = null;
  #owner: Owner;
  #fail: (owner: Owner, error: unknown) => unknown;
  #limits: { readonly channelCapacity: number };

  constructor(
    owner: Owner,
    fail: (owner: Owner, error: unknown) => unknown,
    limits: { readonly channelCapacity: number },
  ) {
    this.#owner = owner;
    this.#fail = fail;
    this.#limits = limits;
  }

  /** True while a hook or task runs: what arrives must wait its turn. */
  get running(): boolean {
    return this.#running;
  }

  /** Marks a hook the owner runs inline now; `continueAfter` ends it. */
  begin(): void {
    this.#running = true;
  }

  /** Queues `task`, or runs it now when nothing runs. False when the queue is full. */
  enqueue(task: Task): boolean {
    const tasks = this.#tasks ??= [];
    if (tasks.length >= this.#limits.channelCapacity) return false;
    tasks.push(task);
    if (!this.#running) void this.#runAll();
    return true;
  }

  /**
   * After a hook ran inline (`pending` is what it returned): the same rules as a queued task, so
   * hooks run one at a time and what arrived meanwhile waits its turn.
   */
  continueAfter(pending: unknown): void {
    // What queued meanwhile (a group send's copy to its own sender, say) runs now, in order,
    // and without an async function and its promise for as long as each task is synchronous.
    while (!(pending instanceof Promise)) {
      const task = this.#next();
      if (task === undefined) {
        this.#running = false;
        return;
      }
      pending = undefined;
      try {
        pending = task();
      } catch (error) {
        this.#fail(this.#owner, error);
      }
    }
    void this.#runAll(pending);
  }

  /**
   * A failed consumer handles nothing more: what waits is dropped, but for the last task when
   * `keepLast` (the close's own, which runs `disconnect`).
   */
  dropWaiting(keepLast: boolean): void {
    const tasks = this.#tasks;
    if (tasks === null || tasks.length === 0) return;
    tasks.splice(0, keepLast ? tasks.length - 1 : tasks.length);
  }

  /**
   * Resolves once the task that runs and those queued before now have run, or `timeoutMs` later
   * (then `onTimeout` runs first, and what still waits is dropped). Nothing runs after it.
   */
  finish(timeoutMs: number, onTimeout: () => void): Promise<void> {
    if (!this.#running) {
      this.#tasks = null; // nothing runs, so nothing waits
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        onTimeout();
        this.#tasks = null;
        resolve();
      }, timeoutMs);
      // Last in the queue, past its bound: nothing is queued after it.
      (this.#tasks ??= []).push(() => {
        clearTimeout(timer);
        this.#tasks = null;
        resolve();
      });
    });
  }

  #next(): Task | undefined {
    const tasks = this.#tasks;
    // Kept once made: a sender queues its own copy of every message it sends. After `finish`,
    // what came before it still runs; nothing is added any more.
    if (tasks === null || tasks.length === 0) return undefined;
    return tasks.shift();
  }

  async #runAll(first?: Promise<void>): Promise<void> {
    this.#running = true;
    if (first !== undefined) {
      try {
        await first;
      } catch (error) {
        this.#fail(this.#owner, error);
      }
    }
    for (let task = this.#next(); task !== undefined; task = this.#next()) {
      try {
        const pending = task();
        if (pending instanceof Promise) await pending;
      } catch (error) {
        this.#fail(this.#owner, error);
      }
    }
    this.#running = false;
  }
}
