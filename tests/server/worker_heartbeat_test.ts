/** The parent's heartbeat of its Workers: asks unanswered in a row, not time, make one hung. */
import { assert, assertEquals } from "@std/assert";
import { WorkerHeartbeat } from "../../server/_worker_heartbeat.ts";

/** A Worker that answers each ask on the next turn, or never (`hung`); `asked` waits for asks. */
class FakeWorker extends EventTarget {
  hung = false;
  #asks = 0;
  #waiting: { count: number; resolve: () => void }[] = [];

  postMessage(): void {
    this.#asks++;
    this.#waiting = this.#waiting.filter((wait) => wait.count > this.#asks || void wait.resolve());
    setTimeout(() => this.hung || this.dispatchEvent(new MessageEvent("message")));
  }

  /** Resolves once `more` asks came after the ones so far. */
  asked(more: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting.push({ count: this.#asks + more, resolve });
    return promise;
  }
}

function watch(workers: FakeWorker[], hangMs: number) {
  const silent: { index: number; silentMs: number }[] = [];
  const { promise: reported, resolve } = Promise.withResolvers<void>();
  const heartbeat = new WorkerHeartbeat(hangMs, (_worker, index, silentMs) => {
    silent.push({ index, silentMs });
    resolve();
  });
  for (const worker of workers) heartbeat.listen(worker as unknown as Worker);
  heartbeat.start(workers as unknown as Worker[], () => false);
  return { heartbeat, silent, reported };
}

Deno.test("a Worker that leaves the asks unanswered for hangMs is reported, the others not", async () => {
  const workers = [new FakeWorker(), new FakeWorker()];
  workers[1].hung = true;
  const { heartbeat, silent, reported } = watch(workers, 400);
  await reported;
  heartbeat.stop();
  assertEquals(silent.map((s) => s.index), [1]);
  assert(silent[0].silentMs >= 400);
});

Deno.test("a parent that was itself busy longer than hangMs does not take its Workers for hung", async () => {
  const worker = new FakeWorker();
  const { heartbeat, silent, reported } = watch([worker], 400);
  // Each wait ends early, and the test fails, if the Worker is reported meanwhile.
  const asked = (more: number) => Promise.race([worker.asked(more), reported]);
  await asked(2);
  // The parent's own loop, blocked for 2.5 x hangMs: what the Worker answers meanwhile waits in
  // the parent's queue, and is read after the first ask that follows.
  worker.hung = true;
  const until = performance.now() + 1000;
  while (performance.now() < until) {
    // busy
  }
  await asked(1);
  worker.hung = false;
  await asked(8); // two hangMs of asks after it, all answered
  heartbeat.stop();
  assertEquals(silent, []);
});
