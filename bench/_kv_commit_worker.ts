/// <reference lib="deno.worker" />
/**
 * One Worker of the `kv-commits` scenario: publishes to one room of the `broadcast` streams at
 * a steady rate, and reports each publish's time until its commit returned.
 */
import { KvStreams } from "../layers/streams/kv.ts";
import { InMemoryLayer } from "../layers/in_memory.ts";

/** What the scenario asks of a Worker. */
export interface KvCommitJob {
  kvPath: string;
  rate: number;
  seconds: number;
  /** Left out: the streams' default. */
  commitBatch?: number;
}

/** What a Worker reports. */
export interface KvCommitReport {
  latenciesMs: number[];
  commitAttempts: number;
  /** How long after its last publish was called the last one returned. */
  lateMs: number;
}

self.onmessage = async (message: MessageEvent<KvCommitJob>) => {
  const { kvPath, rate, seconds, commitBatch } = message.data;
  // Only the commits are measured: members are none, so the layer delivers nothing.
  const streams = await KvStreams.open({
    kvPath,
    prefix: "bench",
    layer: new InMemoryLayer(),
    commitBatch,
  });
  const latenciesMs: number[] = [];
  const publishes: Promise<void>[] = [];
  const count = rate * seconds;
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const calledAt = performance.now();
    publishes.push(
      streams.publish("room", { type: "chat.message", message: "x".repeat(100), i })
        .then(() => void latenciesMs.push(performance.now() - calledAt)),
    );
  }
  const lastCalledAt = performance.now();
  await Promise.all(publishes);
  const lateMs = performance.now() - lastCalledAt;
  const commitAttempts = streams.writeSeconds.counts.reduce((sum, n) => sum + n, 0);
  await streams.close();
  self.postMessage({ latenciesMs, commitAttempts, lateMs } satisfies KvCommitReport);
};
