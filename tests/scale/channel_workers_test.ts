/**
 * Background workers as their own process on Redis: a server (`deno run main.ts`, which runs
 * no worker itself with `LAYER=redis`) and `deno task worker dice` on one Redis. The chat's
 * `/roll` reaches the worker process and its answer reaches the whole room; an event that
 * makes the worker's handler throw is logged and the worker serves the next; without a worker
 * process, and after it stopped, the sender is told so.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { createClient } from "redis";
import { redisAvailability, testRedisUrl, uniquePrefix } from "../_support/redis.ts";
import { TestSocket } from "../_support/socket.ts";
import { Waiters } from "../_support/waiters.ts";
import { START_FLAGS, startServerProcess, TEST_ENV } from "./_process.ts";
import { WAIT } from "./_clients.ts";

const { available } = await redisAvailability();
const redis = available ? await testRedisUrl() : null;
globalThis.addEventListener("unload", () => void redis?.[Symbol.asyncDispose]());

const WORKER = new URL("../../cli/worker.ts", import.meta.url).pathname;
const HANGING_WORKER = new URL("../_support/hanging_worker_process.ts", import.meta.url).pathname;

/**
 * `deno task worker <names>` (or `script`, another route table) as a child process, its output
 * kept; `await using` kills it.
 */
async function startWorkerProcess(
  env: Record<string, string>,
  names: string[],
  script: string = WORKER,
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_FLAGS, script, ...names],
    env: { ...TEST_ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const waiters = new Waiters();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      waiters.notify();
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]).catch(() => {});
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    return status;
  });
  const waitFor = (pattern: RegExp, timeoutMs = 30_000) =>
    waiters.waitFor(
      () => text.match(pattern)?.[0],
      timeoutMs,
      () => `No output matching ${pattern}:\n${text}`,
    );
  const worker = {
    output: () => text,
    waitFor,
    status,
    signal: (signal: Deno.Signal) => exited || child.kill(signal),
    async [Symbol.asyncDispose]() {
      if (!exited) child.kill("SIGKILL");
      await status;
      await drained;
    },
  };
  await Promise.race([
    waitFor(/Running workers for /),
    status.then((s) => {
      throw new Error(`The worker exited with ${s.code} at start:\n${text}`);
    }),
  ]);
  return worker;
}

Deno.test({
  name: "on Redis, /roll reaches the worker process and its answer reaches the whole room",
  ignore: !available,
  fn: async () => {
    const prefix = uniquePrefix("workers");
    const env = { LAYER: "redis", REDIS_URL: redis!.url, REDIS_PREFIX: prefix };
    await using server = await startServerProcess(env);
    const [roller, other] = [
      await TestSocket.open(server.wsUrl("/ws/chat/lobby/")),
      await TestSocket.open(server.wsUrl("/ws/chat/lobby/")),
    ];
    // The server runs no worker itself with Redis: the sender is told, nothing is published.
    roller.sendJson({ message: "/roll 2d6", ref: "before" });
    const missing = await roller.nextMatching((f) => f.ref === "before", WAIT);
    assertEquals(missing, {
      type: "error",
      error: "No dice worker is running",
      message: "No dice worker is running",
      ref: "before",
    });

    await using worker = await startWorkerProcess(env, ["dice"]);
    roller.sendJson({ message: "/roll 2d6" });
    for (const socket of [roller, other]) {
      const answer = await socket.nextMatching((f) => f.author === "Dice", WAIT);
      assertMatch(String(answer.message), /^Anonymous rolled 2d6: \d \+ \d = \d+$/);
      assertEquals(typeof answer.offset, "number");
    }

    // An event its handler throws on (a group name no layer accepts), straight into the queue.
    const client = createClient({ url: redis!.url });
    await client.connect();
    await client.rPush(
      `${prefix}:channel:{dice}`,
      JSON.stringify({ type: "chat.command", command: "roll", args: "1d6", room: "x", group: "" }),
    );
    await client.close();
    await worker.waitFor(/Worker "dice" failed on a "chat.command" event/);
    roller.sendJson({ message: "/roll 1d6" });
    const after = await other.nextMatching((f) => f.author === "Dice", WAIT);
    assertMatch(String(after.message), /^Anonymous rolled 1d6: \d$/);

    // A worker that stopped leaves the registry: the next /roll is told at once.
    worker.signal("SIGTERM");
    assertEquals((await worker.status).code, 0, worker.output());
    roller.sendJson({ message: "/roll 2d6", ref: "after" });
    const gone = await roller.nextMatching((f) => f.ref === "after", WAIT);
    assertEquals(gone.error, "No dice worker is running");
    assert(await other.staysQuiet(200), "a roll without a worker reached the room");
    await roller.close();
    await other.close();
  },
});

/** The worker's exit status, or a failure naming what it said, once `ms` passed without one. */
async function exitsWithin(
  worker: { status: Promise<Deno.CommandStatus>; output(): string },
  ms: number,
) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Still running after ${ms} ms:\n${worker.output()}`)),
      ms,
    );
  });
  try {
    return await Promise.race([worker.status, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A worker process on Redis listening on "jobs", with an event its handler never finishes. */
async function hungWorker() {
  const prefix = uniquePrefix("hung");
  const env = { LAYER: "redis", REDIS_URL: redis!.url, REDIS_PREFIX: prefix };
  const worker = await startWorkerProcess(env, ["jobs"], HANGING_WORKER);
  const client = createClient({ url: redis!.url });
  await client.connect();
  const queue = `${prefix}:channel:{jobs}`;
  await client.rPush(queue, JSON.stringify({ type: "hang" }));
  await worker.waitFor(/Handling a hang event/);
  await client.rPush(queue, JSON.stringify({ type: "note" }));
  return { worker, client, queue };
}

Deno.test({
  name: "a worker process whose handler hangs still stops on SIGTERM, naming the event",
  ignore: !available,
  fn: async () => {
    const { worker, client, queue } = await hungWorker();
    await using _ = worker;
    await using __ = { [Symbol.asyncDispose]: () => client.close() };
    // A second note: the worker takes one event ahead of the hung one, and no more.
    await client.rPush(queue, JSON.stringify({ type: "note" }));
    while (await client.lLen(queue) > 1) await new Promise((resolve) => setTimeout(resolve, 20));
    worker.signal("SIGTERM");
    // The events under way get 3 s, closing the layer and the store 2 s more.
    assertEquals((await exitsWithin(worker, 8000)).code, 0, worker.output());
    assertMatch(worker.output(), /Worker "jobs" gave up on its "hang" event, still running/);
    assertMatch(worker.output(), /SIGTERM: stopped/);
    // The event it took ahead of the hung one is given up on with it, said and counted; what
    // came after waits in Redis for another worker.
    assertMatch(worker.output(), /and 1 queued event\(s\) never started/);
    assertEquals(await client.lLen(queue), 1);
  },
});

Deno.test({
  name: "a second signal stops a worker process at once, with code 1",
  ignore: !available,
  fn: async () => {
    const { worker, client } = await hungWorker();
    await using _ = worker;
    await using __ = { [Symbol.asyncDispose]: () => client.close() };
    worker.signal("SIGTERM");
    await worker.waitFor(/SIGTERM: draining/);
    // A signal within 1 s of the first is its echo (the same stop): this one is a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    worker.signal("SIGINT");
    assertEquals((await exitsWithin(worker, 1500)).code, 1, worker.output());
    assertMatch(worker.output(), /SIGINT again: exiting now/);
  },
});
