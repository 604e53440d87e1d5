/**
 * Overload: clients that complete the handshake and never read, in a room where senders push
 * hard. A server that queues unsent frames without bound grows by hundreds of MiB; ours must
 * stay bounded (MAX_BUFFERED_BYTES per socket, then drop, then close with 1013) and keep
 * serving the clients that do read.
 */
import {
  CHAT_PATH,
  mib,
  ratioCheck,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  setName,
  sleep,
} from "../_scenario.ts";
import { type ServerTarget, startServerProcess } from "../_servers.ts";

const STALLED = 200;
const SENDERS = 5;
const RATE = 250;
const SECONDS = 3;
const MESSAGE_LENGTH = 8000;
const SAMPLE_EVERY_MS = 100;

async function measure(
  context: ScenarioContext,
  target: ServerTarget,
): Promise<Record<string, number>> {
  const { generator, options } = context;
  await using server = await startServerProcess(target);
  const readers = setName("overload-readers", target.name, 0);
  const stalled = setName("overload-stalled", target.name, 0);
  const room = ["overload"];
  try {
    await generator.connect({
      set: readers,
      port: server.port,
      rooms: room,
      perRoom: SENDERS,
      mode: "read",
      pathTemplate: CHAT_PATH,
      timedEvery: 1, // the readers' p99 is a figure here: every one of them is timed
    });
    const connected = await generator.connect({
      set: stalled,
      port: server.port,
      rooms: room,
      perRoom: options.quick ? STALLED / 2 : STALLED,
      mode: "stall",
      pathTemplate: CHAT_PATH,
    });
    if (connected.failed > 0) throw new Error(`Clients could not connect: ${connected.firstError}`);
    await sleep(300);
    const peakReset = server.resetPeak();
    const before = server.sample();
    let sampledPeak = before.rssBytes;
    const sampler = setInterval(() => {
      try {
        sampledPeak = Math.max(sampledPeak, server.sample().rssBytes);
      } catch { /* the server is gone; the run reports it */ }
    }, SAMPLE_EVERY_MS);
    let result;
    try {
      result = await generator.traffic({
        set: readers,
        sendersPerRoom: SENDERS,
        rate: RATE,
        // Quick runs halve the clients, not the bytes each is sent: below a few MiB per
        // socket the kernel's buffers take it all and no server has to queue anything.
        durationMs: SECONDS * 1000,
        messageLength: MESSAGE_LENGTH,
        drainMs: 5000,
      });
    } finally {
      clearInterval(sampler);
    }
    const after = server.sample();
    const peak = peakReset ? Math.max(after.peakBytes, sampledPeak) : sampledPeak;
    return {
      stalledClients: connected.connected,
      attemptedMiB: mib(result.sent * MESSAGE_LENGTH * connected.connected),
      rssBeforeMiB: mib(before.rssBytes),
      peakDeltaMiB: mib(peak - before.rssBytes),
      rssAfterMiB: mib(after.rssBytes),
      readersP99Ms: result.latency.p99,
      readersLost: result.lost,
    };
  } finally {
    await generator.close(stalled).catch(() => {});
    await generator.close(readers).catch(() => {});
  }
}

/** The overload scenario. */
export const overloadScenario: Scenario = {
  name: "overload",
  title: "Overload: clients that stop reading while senders push hard",
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const figures: Record<string, Record<string, number>> = {};
    for (const target of context.targets) {
      context.log(`overload: ${target.name}`);
      figures[target.name] = await measure(context, target);
    }
    const result = { name: "overload", figures };
    return {
      name: "overload",
      title: this.title,
      metrics: [
        { key: "stalledClients", label: "clients not reading", digits: 0 },
        { key: "attemptedMiB", label: "MiB addressed to them", digits: 0 },
        { key: "rssBeforeMiB", label: "server RSS before, MiB", digits: 1 },
        { key: "peakDeltaMiB", label: "server peak RSS growth, MiB", digits: 1 },
        { key: "readersP99Ms", label: "p99 ms of the readers", digits: 1 },
        { key: "readersLost", label: "messages the readers lost", digits: 0 },
      ],
      figures,
      checks: [ratioCheck(result, context.targets, {
        name: "peak memory under overload",
        metric: "peakDeltaMiB",
        comparison: "<=",
        limit: 0.5,
      })],
      notes: [
        `${SENDERS} reading senders, ${RATE} messages/s of ${MESSAGE_LENGTH} characters; ` +
        `peak = VmHWM (reset before the run) or ${SAMPLE_EVERY_MS} ms RSS samples`,
      ],
    };
  },
};
