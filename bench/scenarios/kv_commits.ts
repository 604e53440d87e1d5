/**
 * KV commits: the `broadcast` streams (`--workers N`) as two Workers use them, both publishing
 * to one room of one KV file at a steady rate, first with each publish committed on its own (the
 * baseline: how they were made before group commits), then with group commits (the default).
 * It measures each publish from its call until its commit returned, and how many commits were
 * attempted (one that lost the version check to the other Worker counts too). The chat's load
 * on top (sockets, fan-out) is left out: only what the commits cost is measured here.
 */
import type { Check, Scenario, ScenarioContext, ScenarioResult } from "../_scenario.ts";
import { ratio } from "../_scenario.ts";
import type { KvCommitJob, KvCommitReport } from "../_kv_commit_worker.ts";
import { Histogram } from "../_histogram.ts";

const NAME = "kv-commits";
const WORKERS = 2;
/** Publishes per second per Worker: twice what one-by-one commits kept up with here. */
const RATE = 1600;
const SECONDS = 5;
const QUICK_SECONDS = 2;

// `commitBatch` left out: the streams' default, as `deno task start --workers N` runs them.
const FORMS: { name: string; commitBatch?: number }[] = [
  { name: "one-by-one", commitBatch: 1 },
  { name: "grouped" },
];

const METRICS = [
  { key: "p50", label: "ms from publish to commit: p50", digits: 1 },
  { key: "p99", label: "ms from publish to commit: p99", digits: 1 },
  { key: "max", label: "ms from publish to commit: max", digits: 1 },
  { key: "attemptsPerPublish", label: "commit attempts per publish", digits: 2 },
  { key: "lateMs", label: "ms after the last call until all returned", digits: 0 },
];

/** The `kv-commits` scenario. */
export const kvCommitsScenario: Scenario = {
  name: NAME,
  title: `KV commits: ${WORKERS} Workers publishing to one room, ${RATE}/s each`,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const seconds = context.options.quick ? QUICK_SECONDS : SECONDS;
    const figures: Record<string, Record<string, number>> = {};
    const dir = await Deno.makeTempDir({ prefix: "bench-kv-commits-" });
    try {
      for (const form of FORMS) {
        context.log(`${NAME}: ${form.name}`);
        const kvPath = `${dir}/${form.name}.kv`;
        const job: KvCommitJob = { kvPath, rate: RATE, seconds, commitBatch: form.commitBatch };
        const reports = await Promise.all(Array.from({ length: WORKERS }, () => runWorker(job)));
        const latencies = new Histogram();
        for (const report of reports) report.latenciesMs.forEach((ms) => latencies.add(ms));
        const { count, p50, p99, max } = latencies.summary();
        const attempts = reports.reduce((sum, r) => sum + r.commitAttempts, 0);
        figures[form.name] = {
          p50,
          p99,
          max,
          attemptsPerPublish: attempts / count,
          lateMs: Math.max(...reports.map((r) => r.lateMs)),
        };
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const value = ratio(figures.grouped.p99, figures["one-by-one"].p99);
    const check: Check = {
      name: `p99 from publish to commit at ${RATE}/s per Worker, grouped / one-by-one`,
      scenario: NAME,
      value,
      comparison: "<=",
      limit: 1,
      pass: value <= 1,
      reported: true,
    };
    return {
      name: NAME,
      title: this.title,
      metrics: METRICS,
      figures,
      checks: [check],
      notes: [
        `${WORKERS} Deno Workers of the bench process, one KV file per form, ${RATE} publishes/s ` +
        `each for ${seconds} s, 100-character messages, to one room; no sockets.`,
        "one-by-one: each publish its own commit (KvStreams' commitBatch 1, as before group " +
        "commits); grouped: the publishes called during a commit go in the next (the default).",
      ],
      servers: FORMS.map((form) => form.name),
    };
  },
};

function runWorker(job: KvCommitJob): Promise<KvCommitReport> {
  const worker = new Worker(new URL("../_kv_commit_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise<KvCommitReport>((resolve, reject) => {
    worker.onmessage = (message: MessageEvent<KvCommitReport>) => resolve(message.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`A KV commit Worker failed: ${event.message}`));
    };
    worker.postMessage(job);
  }).finally(() => worker.terminate());
}
