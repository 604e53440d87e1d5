/**
 * The worker framework on the in-process layer: a route table of named channels, workers
 * that answer groups, one event at a time, and a failure in one event that is logged and
 * does not stop the worker.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  channelNameRouter,
  type ChannelWorker,
  type LayerEvent,
  log,
  type LogLevel,
  runChannelWorkers,
} from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { Inbox } from "../layers/_inbox.ts";
import { TEST_REPORTS, type TestReporter } from "../../server/_told_in_tests.ts";

/** Log lines at warning level and above, while `run` runs. */
async function capturingLogs<T>(run: (lines: string[]) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  log.setLevel("warn");
  log.setSink((line: string, _level: LogLevel) => lines.push(line));
  try {
    return await run(lines);
  } finally {
    log.setSink(null);
    log.setLevel("silent");
  }
}

/** Answers `{n}` with `{type: "done", n}` to the group `results`, in the order handled. */
const echoWorker: ChannelWorker = (ctx) => ({
  events: {
    job: async (event) => {
      if (event.n === 1) throw new Error("job 1 is broken");
      await ctx.groupSend("results", { type: "done", n: event.n });
    },
  },
});

Deno.test("a worker answers a group for each event sent to its channel, in order", async () => {
  await using services = await createTestServices();
  const results = new Inbox(services.layer, 2000);
  await services.layer.groupAdd("results", results.channel);
  const workers = await runChannelWorkers(channelNameRouter({ jobs: echoWorker }), services);
  for (const n of [2, 3, 4]) {
    const sent = await services.layer.send("jobs", { type: "job", n });
    assertEquals([sent.delivered, sent.noListener], [1, undefined]);
  }
  await results.until(() => results.count("done") === 3, "three results");
  assertEquals(results.numbers("done"), [2, 3, 4]);
  await workers.close();
});

Deno.test("a handler that throws on one event is logged and the worker serves the next", async () => {
  await using services = await createTestServices();
  const results = new Inbox(services.layer, 2000);
  await services.layer.groupAdd("results", results.channel);
  await capturingLogs(async (lines) => {
    const workers = await runChannelWorkers(channelNameRouter({ jobs: echoWorker }), services);
    await services.layer.send("jobs", { type: "job", n: 1 });
    await services.layer.send("jobs", { type: "job", n: 2 });
    await results.receives("done", 2);
    await workers.close(); // the handler's last steps after its answer
    assertEquals(workers.stats(), { handled: 1, failed: 1, unhandled: 0, abandoned: 0 });
    const line = lines.find((l) => l.includes('Worker "jobs" failed on a "job" event'));
    assert(line?.includes("job 1 is broken"), `no log line for the failure:\n${lines.join("\n")}`);
  });
});

Deno.test("an event without a handler is logged, not silently dropped", async () => {
  await using services = await createTestServices();
  await capturingLogs(async (lines) => {
    const workers = await runChannelWorkers(channelNameRouter({ jobs: echoWorker }), services);
    await services.layer.send("jobs", { type: "mystery" });
    await workers.close(); // lets the events already taken finish
    assertEquals(workers.stats().unhandled, 1);
    assert(lines.some((l) => l.includes('no handler for "mystery"')), lines.join("\n"));
  });
});

Deno.test("under a test's silent log, a worker's failure and an event it has no handler for are told on the test's output", async () => {
  await using services = await createTestServices();
  const told: string[] = [];
  const report: TestReporter = (text, error) =>
    told.push(error instanceof Error ? `${text} ${error.message}` : text);
  const telling = { ...services, [TEST_REPORTS]: report } as typeof services;
  const workers = await runChannelWorkers(channelNameRouter({ jobs: echoWorker }), telling);
  await services.layer.send("jobs", { type: "job", n: 1 }); // its handler throws
  await services.layer.send("jobs", { type: "jbo", n: 2 }); // misspelt
  await workers.close();
  assertEquals(told, [
    'Channel worker: Worker "jobs" failed on a "job" event; it goes on with the next: ' +
    "job 1 is broken",
    'Channel worker: Worker "jobs" has no handler for "jbo" events: ignored',
  ]);
});

Deno.test("a worker's handler takes the event typed the Channels way too, as runworker's does", async () => {
  await using services = await createTestServices();
  const results = new Inbox(services.layer, 2000);
  await services.layer.groupAdd("results", results.channel);
  const thumbs: ChannelWorker = (ctx) => ({
    events: {
      "thumbnail.make": async (event) => {
        await ctx.groupSend("results", { type: "done", n: event.n });
      },
    },
  });
  const workers = await runChannelWorkers(channelNameRouter({ thumbs }), services);
  await services.layer.send("thumbs", { type: "thumbnail_make", n: 1 }); // Django's form
  await services.layer.send("thumbs", { type: "thumbnail.make", n: 2 });
  await results.until(() => results.count("done") === 2, "both handled");
  assertEquals(results.numbers("done"), [1, 2]);
  await workers.close();
  assertEquals(workers.stats().unhandled, 0);
});

Deno.test("an event whose type holds a line break cannot forge a log line", async () => {
  await using services = await createTestServices();
  await capturingLogs(async (lines) => {
    const workers = await runChannelWorkers(channelNameRouter({ jobs: echoWorker }), services);
    const forged = "x\n2026-01-01T00:00:00.000Z ERROR forged\u2028\u202e";
    await services.layer.send("jobs", { type: forged });
    await workers.close();
    assertEquals(workers.stats().unhandled, 1);
    const joined = lines.join("\n");
    assertEquals(joined.split("\n").length, lines.length, joined);
    assert(!/[\u2028\u202e]/.test(joined), joined);
    assert(joined.includes(String.raw`no handler for "x\u000a2026-01-01`), joined);
  });
});

Deno.test("a handler that never returns holds a stop only its bounded time, and is named", async () => {
  await using services = await createTestServices();
  let hung!: () => void;
  const started = new Promise<void>((resolve) => hung = resolve);
  const hangs: ChannelWorker = () => ({
    events: {
      hang: () => {
        hung();
        return new Promise<void>(() => {}); // never returns
      },
      job: () => {},
    },
  });
  await capturingLogs(async (lines) => {
    const workers = await runChannelWorkers(channelNameRouter({ jobs: hangs }), services, {
      stopTimeoutMs: 50,
    });
    await services.layer.send("jobs", { type: "hang" });
    await services.layer.send("jobs", { type: "job" });
    await started;
    await workers.close(); // resolves: the test would time out otherwise
    assertEquals(workers.stats(), { handled: 0, failed: 0, unhandled: 0, abandoned: 2 });
    assert(
      lines.some((l) =>
        l.includes('Worker "jobs" gave up on its "hang" event, still running after 0.05 s') &&
        l.includes("1 queued event(s) never started")
      ),
      lines.join("\n"),
    );
  });
});

Deno.test("after the workers close, a send to their channel is reported unheard", async () => {
  await using services = await createTestServices();
  const workers = await runChannelWorkers(channelNameRouter({ jobs: echoWorker }), services);
  await workers.close();
  await workers.close();
  const sent = await services.layer.send("jobs", { type: "job", n: 2 } as LayerEvent);
  assertEquals([sent.delivered, sent.noListener], [0, true]);
});

Deno.test("the route table refuses bad channel names, and running an unknown one fails", async () => {
  assertThrows(() => channelNameRouter({ "two words": echoWorker }), TypeError);
  assertThrows(() => channelNameRouter({ "specific.abc!1": echoWorker }), TypeError);
  await using services = await createTestServices();
  const router = channelNameRouter({ jobs: echoWorker });
  assertEquals(router.names, ["jobs"]);
  await assertRejects(
    () => runChannelWorkers(router, services, { names: ["jobs", "thumbnails"] }),
    Error,
    'No worker for channel(s) "thumbnails"',
  );
  // Nothing was left listening by the refused start.
  assertEquals((await services.layer.send("jobs", { type: "job", n: 2 })).noListener, true);
});
