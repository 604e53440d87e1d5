/**
 * The presence storm: N users (500) open the user list within 2 s, then all but a few
 * observers leave within 2 s. Measured: how long after the last join every client shows all N
 * online, how long after the last leave the observers show only themselves, and the frames and
 * bytes the server sent. The same run measures a naive server that sends the whole online list
 * to everyone on every change (`naive_presence_server.ts`). Targets: converged within 1 s of
 * the last join, and at least 10x fewer bytes than the naive server.
 *
 * In `deno task bench` it is the scenario "presence"; alone:
 * `deno run -A --unstable-kv --unstable-net bench/presence_storm.ts [--quick]`.
 */
import { join } from "@std/path";
import type { Scenario, ScenarioContext, ScenarioResult } from "./_scenario.ts";
import { ratioCheck } from "./_scenario.ts";
import { OURS, type ServerTarget, startServerProcess } from "./_servers.ts";
import { formatChecks, formatScenario } from "./_report.ts";
import { convergence, spread, StormClient, type StormProtocol } from "./_storm_client.ts";
import { DenoKvStore } from "../storage/deno_kv_store.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { UserDirectory } from "../auth/users.ts";
import { SessionStore } from "../auth/sessions.ts";
import { SESSION_COOKIE } from "../auth/cookies.ts";

const USERS = 500;
const QUICK_USERS = 200;
const JOIN_SPREAD_MS = 2000;
const LEAVE_SPREAD_MS = 2000;
const OBSERVERS = 10;
const CONVERGE_TIMEOUT_MS = 60_000;

/** The naive baseline server. */
export const NAIVE_PRESENCE: ServerTarget = {
  name: "naive",
  module: "bench/naive_presence_server.ts",
  denoFlags: ["-A"],
  args: [],
  env: {},
  dataDir: false,
  notes: [],
};

const naiveProtocol: StormProtocol = {
  url: (base, user) => `${base}/ws/presence/state/?user=${encodeURIComponent(user)}`,
  headers: () => ({}),
  apply(frame, online) {
    if (frame.type !== "presence.list") return;
    online.clear();
    for (const user of frame.online as string[]) online.add(user);
  },
};

function oursProtocol(cookies: Map<string, string>): StormProtocol {
  return {
    url: (base) => `${base}/ws/presence/state/`,
    headers: (user) => ({ cookie: `${SESSION_COOKIE}=${cookies.get(user)}` }),
    apply(frame, online) {
      if (frame.type === "presence.state") {
        online.clear();
        for (const user of frame.users as { username: string; online: boolean }[]) {
          if (user.online) online.add(user.username);
        }
      } else if (frame.type === "presence.diff") {
        for (const user of frame.joins as string[]) online.add(user);
        for (const user of frame.leaves as string[]) online.delete(user);
      }
    },
  };
}

/** Registers the storm's users and their sessions in a fresh data directory. */
async function prepareUsers(
  names: string[],
): Promise<{ dataDir: string; cookies: Map<string, string> }> {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-storm-" });
  const store = await DenoKvStore.open(join(dataDir, "channels.kv"));
  try {
    // Nobody logs in with a password here: the cheapest hash will do.
    const users = new UserDirectory(store, new PasswordHasher({ iterations: 1, allowWeak: true }));
    const sessions = new SessionStore(store, { maxAgeSeconds: 3600 });
    const cookies = new Map<string, string>();
    for (const name of names) {
      await users.create(name, "storm password 1");
      cookies.set(name, (await sessions.create(name)).id);
    }
    return { dataDir, cookies };
  } finally {
    store.close();
  }
}

/** One storm against one server: joins, convergence, leaves, convergence, totals. */
async function storm(
  port: number,
  names: string[],
  protocol: StormProtocol,
): Promise<Record<string, number>> {
  const base = `ws://127.0.0.1:${port}`;
  const started = performance.now();
  const joinTimes: number[] = [];
  const clients = await spread(names.length, JOIN_SPREAD_MS, async (i) => {
    const client = await StormClient.open(base, names[i], protocol);
    joinTimes.push(performance.now());
    return client;
  });
  const lastJoin = Math.max(...joinTimes);
  const joined = await convergence(
    clients,
    (c) => c.online.size === names.length,
    CONVERGE_TIMEOUT_MS,
  );
  const observers = clients.slice(0, OBSERVERS);
  const leavers = clients.slice(OBSERVERS);
  const leaveTimes = await spread(leavers.length, LEAVE_SPREAD_MS, async (i) => {
    await leavers[i].close();
    return performance.now();
  });
  const lastLeave = Math.max(...leaveTimes);
  const observerNames = new Set(observers.map((c) => c.user));
  const left = await convergence(
    observers,
    (c) => c.online.size === OBSERVERS && [...c.online].every((u) => observerNames.has(u)),
    CONVERGE_TIMEOUT_MS,
  );
  await Promise.all(observers.map((c) => c.close()));
  const frames = clients.reduce((sum, c) => sum + c.frames, 0);
  const bytes = clients.reduce((sum, c) => sum + c.bytes, 0);
  return {
    users: names.length,
    joinSeconds: (lastJoin - started) / 1000,
    joinConvergedMs: Math.max(0, joined - lastJoin),
    leaveConvergedMs: Math.max(0, left - lastLeave),
    frames,
    megabytes: bytes / 1e6,
  };
}

/** Runs the storm against the naive server and ours; figures keyed by the report's names. */
async function runStorm(context: ScenarioContext): Promise<ScenarioResult> {
  const count = context.options.quick ? QUICK_USERS : USERS;
  const names = Array.from({ length: count }, (_, i) => `storm-${String(i).padStart(3, "0")}`);
  const [baselineName, oursName] = context.targets.map((target) => target.name);
  const figures: Record<string, Record<string, number>> = {};
  {
    context.log(`presence: naive server, ${count} users`);
    await using naive = await startServerProcess(NAIVE_PRESENCE);
    figures[baselineName] = await storm(naive.port, names, naiveProtocol);
  }
  const { dataDir, cookies } = await prepareUsers(names);
  try {
    context.log(`presence: ours, ${count} users`);
    await using ours = await startServerProcess(OURS, {
      env: { DATA_DIR: dataDir, PRESENCE_GRACE_MS: "0" },
    });
    figures[oursName] = await storm(ours.port, names, oursProtocol(cookies));
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
  return finish(figures, context, count);
}

function finish(
  figures: Record<string, Record<string, number>>,
  context: ScenarioContext,
  count: number,
): ScenarioResult {
  const name = "presence";
  const ours = figures[context.targets[1].name];
  const partial = { name, figures };
  const converged = ours.joinConvergedMs / 1000;
  return {
    name,
    title: `Presence storm: ${count} users join within 2 s, then leave`,
    metrics: [
      { key: "joinSeconds", label: "joins took (s)", digits: 2 },
      { key: "joinConvergedMs", label: "all lists right after last join (ms)", digits: 0 },
      { key: "leaveConvergedMs", label: "observers right after last leave (ms)", digits: 0 },
      { key: "frames", label: "frames sent", digits: 0 },
      { key: "megabytes", label: "bytes sent (MB)", digits: 2 },
    ],
    figures,
    checks: [
      ratioCheck(partial, context.targets, {
        name: "presence bytes vs naive",
        metric: "megabytes",
        comparison: "<=",
        limit: 0.1,
      }),
      {
        name: "presence converged (s after last join)",
        scenario: name,
        value: converged,
        comparison: "<=",
        limit: 1,
        pass: converged <= 1,
      },
    ],
    notes: [
      `baseline column "${context.targets[0].name}" here: bench/naive_presence_server.ts, the ` +
      `whole online list to every socket on every change; ours with PRESENCE_GRACE_MS=0 so ` +
      `leaves are not held back by the grace period`,
      `clients run in the bench process; bytes are payloads plus WebSocket frame headers`,
    ],
  };
}

/** The presence storm scenario for `bench/mod.ts`. */
export const presenceStormScenario: Scenario = {
  name: "presence",
  title: "Presence storm",
  run: runStorm,
};

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const targets = [NAIVE_PRESENCE, OURS];
  const result = await runStorm({
    options: { quick, only: null, rounds: 1, out: "" },
    targets,
    // The storm drives its own clients: no load generator process.
    generator: undefined as never,
    log: (message) => console.error(message),
  });
  console.log(formatScenario(result, targets.map((target) => target.name)));
  console.log(formatChecks(result.checks));
}
