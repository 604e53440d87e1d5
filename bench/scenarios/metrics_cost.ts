/**
 * What metrics cost: the fan-out load on two of ours at once (paired, each with its own
 * generator), one with metrics off (the default) and one with them on (`METRICS_TOKEN` and
 * `METRICS_ADDRESS` set: the route, the event-loop lag timer) and scraped by the bench every
 * second, as Prometheus would. The figure is CPU per delivery, on over off. Target: at most
 * 1.02x. The counting itself (plain number increments per frame) runs in both: it is always
 * on, since the admin page reads it too.
 */
import { type Check, ratioCheck, type Scenario, type ScenarioContext } from "../_scenario.ts";
import { OURS, type ServerTarget } from "../_servers.ts";
import { FANOUT_LOAD, fixedRateScenario } from "./fixed_rate.ts";

/** The target: metrics on costs at most 2% more CPU per delivery than metrics off. */
export const METRICS_COST_LIMIT = 1.02;
const SCRAPE_EVERY_MS = 1000;
const TOKEN = "bench-metrics-token";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Scrapes `url` every second until disposed; counts the answers that were metrics. */
function startScraper(url: string): AsyncDisposable & { scrapes: number; failures: number } {
  const state = { scrapes: 0, failures: 0 };
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await response.text();
      if (response.ok && text.includes("channels_frames_sent_total")) state.scrapes++;
      else state.failures++;
    } catch {
      state.failures++; // the server restarts between rounds
    } finally {
      busy = false;
    }
  }, SCRAPE_EVERY_MS);
  return {
    get scrapes() {
      return state.scrapes;
    },
    get failures() {
      return state.failures;
    },
    async [Symbol.asyncDispose]() {
      clearInterval(timer);
      while (busy) await new Promise((resolve) => setTimeout(resolve, 10));
    },
  };
}

const TITLE = "Metrics cost: ours with metrics on (scraped every second) vs off, fan-out load";

/** The scenario: ours-off as the baseline, ours-metrics as the subject. */
export const metricsCostScenario: Scenario = {
  name: "metrics_cost",
  title: TITLE,
  async run(context: ScenarioContext) {
    const port = freePort();
    const off: ServerTarget = { ...OURS, name: "ours", notes: [] };
    const on: ServerTarget = {
      ...OURS,
      name: "ours-metrics",
      env: { ...OURS.env, METRICS_TOKEN: TOKEN, METRICS_ADDRESS: `127.0.0.1:${port}` },
      notes: [],
    };
    const targets = [off, on];
    const inner = fixedRateScenario({
      name: "metrics_cost",
      title: TITLE,
      ...FANOUT_LOAD,
      paired: true,
    });
    await using scraper = startScraper(`http://127.0.0.1:${port}/metrics`);
    const result = await inner.run({ ...context, targets });
    if (scraper.scrapes === 0) throw new Error("The metrics were never scraped");
    const lost = result.checks.filter((check) => check.limit === 0);
    const checks: Check[] = [
      ratioCheck(result, targets, {
        name: `metrics cost (CPU per delivery, on / off) ≤ ${METRICS_COST_LIMIT}x`,
        metric: "cpuMsPer1000",
        comparison: "<=",
        limit: METRICS_COST_LIMIT,
      }),
      ...lost,
    ];
    return {
      ...result,
      checks,
      servers: targets.map((target) => target.name),
      notes: [
        ...result.notes,
        `ours-metrics: METRICS_TOKEN and METRICS_ADDRESS set; ${scraper.scrapes} scrapes of ` +
        `/metrics (one a second) during the scenario, ${scraper.failures} refused while a ` +
        `server restarted between rounds`,
      ],
    };
  },
};
