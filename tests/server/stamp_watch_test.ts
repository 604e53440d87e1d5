/**
 * A stamp watch (sockets a revoke or a password change from another process may end): it reads
 * one stamp per check while nothing changed, the records of its bindings only after a change,
 * closes the sockets of a binding gone, and stops reading once its last socket finished.
 */
import { assertEquals } from "@std/assert";
import { StampWatch } from "../../server/_stamp_watch.ts";
import type { BindingState } from "../../server/_bound_socket.ts";
import type { WebSocketConnection } from "../../server/_connection.ts";

/** A socket as the watch sees it: it can be closed, and it finishes. */
class FakeSocket {
  closedWith: [number, string] | null = null;
  #finished: (() => void)[] | "done" = [];
  readonly conn = {
    // As a connection's: a listener given once it finished runs at once.
    onFinished: (listener: () => void) =>
      this.#finished === "done" ? listener() : this.#finished.push(listener),
    close: (code: number, reason: string) => this.closedWith = [code, reason],
  } as unknown as WebSocketConnection;

  finish(): void {
    const listeners = this.#finished;
    this.#finished = "done";
    if (listeners !== "done") { for (const listener of listeners) listener(); }
  }
}

/** A store with one stamp and the live bindings; every read is counted, and can be awaited. */
class FakeStore {
  stamp: string | null = null;
  live = new Set<string>();
  /** Bindings gone to a new session of their user: not live, and not ended either. */
  renewed = new Set<string>();
  stampReads = 0;
  recordReads: string[] = [];
  failNextStampRead = false;
  #waiters: { reads: number; resolve: () => void }[] = [];

  readStamp = (): Promise<string | null> => {
    this.stampReads++;
    for (const waiter of this.#waiters.filter((w) => w.reads <= this.stampReads)) waiter.resolve();
    if (this.failNextStampRead) {
      this.failNextStampRead = false;
      return Promise.reject(new Error("store down"));
    }
    return Promise.resolve(this.stamp);
  };

  /** Set: the next record read waits for it, and `held` resolves as it starts waiting. */
  hold: Promise<void> | null = null;
  held = Promise.withResolvers<void>();

  read = async (binding: string): Promise<BindingState> => {
    this.recordReads.push(binding);
    const hold = this.hold;
    this.hold = null;
    if (hold !== null) {
      this.held.resolve();
      await hold;
    }
    if (this.live.has(binding)) return "live";
    return this.renewed.has(binding) ? "renewed" : "ended";
  };

  /** Resolves once the stamp was read `reads` times in all, and the check that read it ran. */
  async stampReadTimes(reads: number): Promise<void> {
    if (this.stampReads < reads) {
      await within(new Promise<void>((resolve) => this.#waiters.push({ reads, resolve })));
    }
    // The check goes on after its read: let it read the records and close.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** `promise`, failing after 5 s: the watch's timer does not keep the process up, this one does. */
async function within<T>(promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("Not within 5 s")), 5_000);
  });
  return await Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function watchOn(store: FakeStore): StampWatch<string> {
  return new StampWatch<string>({
    readStamp: store.readStamp,
    read: store.read,
    checkEveryMs: 5,
    reason: "Ended",
    what: "the test stamp",
  });
}

Deno.test("a watch reads only the stamp while nothing changes, not every binding a first time", async () => {
  const store = new FakeStore();
  store.live = new Set(["a", "b"]);
  const watch = watchOn(store);
  const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
  await watch.add(sockets[0].conn, "a", "a");
  await watch.add(sockets[1].conn, "a", "a");
  await watch.add(sockets[2].conn, "b", "b");
  await store.stampReadTimes(4);
  assertEquals(store.recordReads, [], "no record read while the stamp stayed the same");
  for (const socket of sockets) socket.finish();
});

Deno.test("after a change, a watch reads each binding once and closes the sockets of those gone", async () => {
  const store = new FakeStore();
  store.live = new Set(["a", "b"]);
  const watch = watchOn(store);
  const [a1, a2, b] = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
  await watch.add(a1.conn, "a", "a");
  await watch.add(a2.conn, "a", "a");
  await watch.add(b.conn, "b", "b");
  // Another process ends "a": its record first, then the stamp.
  store.live.delete("a");
  store.stamp = "changed";
  const reads = store.stampReads;
  await store.stampReadTimes(reads + 1);
  assertEquals(store.recordReads.sort(), ["a", "b"], "one read per binding, not per socket");
  assertEquals(a1.closedWith, [4001, "Ended"]);
  assertEquals(a2.closedWith, [4001, "Ended"]);
  assertEquals(b.closedWith, null, "a binding still live keeps its socket");
  for (const socket of [a1, a2, b]) socket.finish();
});

Deno.test("a check that finds a session renewed, not ended, tells its sockets to reconnect (4002)", async () => {
  const store = new FakeStore();
  store.live = new Set(["a", "b"]);
  const watch = watchOn(store);
  const [a, b] = [new FakeSocket(), new FakeSocket()];
  await watch.add(a.conn, "a", "a");
  await watch.add(b.conn, "b", "b");
  // A password change ended "b" and moved the stamp; the browser of "a" made it, and its check
  // falls after "a"'s renewal deleted it, before the renewal's own close reached the socket.
  store.live.clear();
  store.renewed.add("a");
  store.stamp = "changed";
  await store.stampReadTimes(store.stampReads + 1);
  assertEquals(a.closedWith, [4002, "Session renewed"]);
  assertEquals(b.closedWith, [4001, "Ended"]);
  for (const socket of [a, b]) socket.finish();
});

Deno.test("a watch whose first stamp read failed reads every binding at its first check", async () => {
  const store = new FakeStore();
  store.failNextStampRead = true;
  const watch = watchOn(store);
  const socket = new FakeSocket();
  // The change this socket's handshake could not be sure to see: no stamp to compare with.
  await watch.add(socket.conn, "a", "a");
  await store.stampReadTimes(2);
  assertEquals(store.recordReads, ["a"]);
  assertEquals(socket.closedWith, [4001, "Ended"]);
  socket.finish();
});

Deno.test("a watch stops reading once its last socket finished, and starts again with the next", async () => {
  const store = new FakeStore();
  store.live = new Set(["a"]);
  const watch = watchOn(store);
  const first = new FakeSocket();
  await watch.add(first.conn, "a", "a");
  await store.stampReadTimes(2);
  first.finish();
  const readsWhenStopped = store.stampReads;
  // Long enough for several checks, had the timer been left running.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(store.stampReads, readsWhenStopped, "no read without a socket");
  // A change while no socket was watched: the next socket's handshake read its record after it.
  store.stamp = "changed while stopped";
  const second = new FakeSocket();
  await watch.add(second.conn, "a", "a");
  assertEquals(store.stampReads, readsWhenStopped + 1, "a new start reads the stamp first");
  await store.stampReadTimes(readsWhenStopped + 2);
  assertEquals(store.recordReads, [], "the stamp it started with is not a change");
  second.finish();
});

Deno.test("a connection that finished before it was added leaves the watch reading nothing", async () => {
  const store = new FakeStore();
  const watch = watchOn(store);
  const gone = new FakeSocket();
  gone.finish();
  await watch.add(gone.conn, "a", "a");
  const reads = store.stampReads;
  // Long enough for several checks, had its start been left running.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(store.stampReads, reads, "no read without a socket");
});

Deno.test("told a handshake could not read its record, a watch reads every binding next check", async () => {
  const store = new FakeStore();
  store.live = new Set(["b"]);
  const watch = watchOn(store);
  const [a, b] = [new FakeSocket(), new FakeSocket()];
  await watch.add(a.conn, "a", "a");
  await watch.add(b.conn, "b", "b");
  // "a" ended before the watch's first stamp, and its handshake's read of it failed.
  watch.readAllNextCheck();
  await store.stampReadTimes(store.stampReads + 1);
  assertEquals(store.recordReads.sort(), ["a", "b"]);
  assertEquals(a.closedWith, [4001, "Ended"]);
  assertEquals(b.closedWith, null);
  b.finish();
});

Deno.test("a re-read asked for while a check reads its records is not lost when that check ends", async () => {
  const store = new FakeStore();
  store.live = new Set(["a", "s"]);
  const watch = watchOn(store);
  const a = new FakeSocket();
  await watch.add(a.conn, "a", "a");
  // Another process ends "s" (its socket is still connecting) and moves the stamp; the check that
  // sees it holds on "a"'s record.
  const release = Promise.withResolvers<void>();
  store.hold = release.promise;
  store.live.delete("s");
  store.stamp = "changed";
  await within(store.held.promise);
  // Meanwhile "s" joins, past that check's list, and its handshake's second read failed.
  const s = new FakeSocket();
  await watch.add(s.conn, "s", "s");
  watch.readAllNextCheck();
  release.resolve();
  const reads = store.stampReads;
  await store.stampReadTimes(reads + 1);
  assertEquals(s.closedWith, [4001, "Ended"], "the next check read it, and closed it");
  assertEquals(a.closedWith, null);
  a.finish();
});
