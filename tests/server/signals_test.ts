/**
 * `stopOnSignals`, as an app of one's own uses it (`tests/fixtures/signals/app.ts`): SIGTERM
 * and SIGINT stop the process gracefully, so the in-process streams are written on the way out
 * and the next run has the same room, epoch and offsets (clients then recover completely).
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { CUT_SHORT_EXIT_CODE, stopOnSignals, type Stoppable } from "../../server/signals.ts";
import { log } from "../../telemetry/log.ts";
import { CapturedLog } from "../_support/captured_log.ts";
import { Waiters } from "../_support/waiters.ts";
import { TestSocket } from "../_support/socket.ts";

const APP = new URL("../fixtures/signals/app.ts", import.meta.url).pathname;

/** Runs the app until it printed its position; `stop` signals it and waits for its exit. */
async function runApp(dataDir: string, publish: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-kv", "--unstable-net", "--allow-all", APP, String(publish)],
    env: { DATA_DIR: dataDir, LOG_LEVEL: "info", PORT: "0" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  // Its position is the line of JSON; the log (`Listening at …`) shares stdout with it.
  const positionLine = () =>
    printed.split("\n").slice(0, -1).find((line) => line.startsWith('{"epoch"')); // whole lines
  let printed = "";
  while (positionLine() === undefined) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
  }
  const position = JSON.parse(positionLine() ?? "{}") as { epoch: string; offset: number };
  return {
    position,
    async stop(signal: Deno.Signal) {
      child.kill(signal);
      // The log goes to stdout, after the position.
      let log = printed;
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        log += read.value;
      }
      log += await new Response(child.stderr).text();
      const status = await child.status;
      return { code: status.code, log };
    },
  };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`after ${signal}, the next run keeps the room's epoch and offsets`, async () => {
    const dataDir = await Deno.makeTempDir();
    try {
      const first = await runApp(dataDir, 3);
      assertEquals(first.position.offset, 3);
      const stopped = await first.stop(signal);
      assertEquals(stopped.code, 0, stopped.log);
      assertStringIncludes(stopped.log, `${signal}: stopped`);
      const second = await runApp(dataDir, 0);
      assertEquals(second.position, first.position, "the restart lost the room's history");
      assertEquals((await second.stop("SIGINT")).code, 0);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  });
}

// A server whose drain runs until the test ends it, and the exits asked for.
function stopping() {
  let drains = 0;
  let drainStarted!: () => void;
  const started = new Promise<void>((resolve) => drainStarted = resolve);
  const server: Stoppable = {
    drain: () => {
      drains++;
      drainStarted();
      return new Promise(() => {});
    },
    shutdown: () => Promise.resolve(),
  };
  return { server, started, drains: () => drains, exits: [] as number[] };
}

// Sends SIGTERM to this process `count` times, each once the one before was handled (two
// pending signals of one kind are one signal); resolves once the last one was handled.
async function terminateSelf(count: number): Promise<void> {
  let heard = () => {};
  // Added after the stop's own listener, so it hears each signal after it.
  const listener = () => heard();
  Deno.addSignalListener("SIGTERM", listener);
  // Signal listeners do not keep the event loop alive; this timer does, and fails a lost signal.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lost = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("a signal never arrived")), 10_000);
  });
  try {
    for (let i = 0; i < count; i++) {
      const handled = new Promise<void>((resolve) => heard = resolve);
      Deno.kill(Deno.pid, "SIGTERM");
      await Promise.race([handled, lost]);
    }
  } finally {
    clearTimeout(timer);
    Deno.removeSignalListener("SIGTERM", listener);
  }
}

Deno.test("a signal that follows the first at once is the same stop, not a second one", async () => {
  log.setLevel("error");
  const { server, started, drains, exits } = stopping();
  const remove = stopOnSignals(server, { drainWindowMs: 60_000, exit: (code) => exits.push(code) });
  try {
    await terminateSelf(2);
    await started;
    assertEquals(drains(), 1);
    assertEquals(exits, [], "the stop was cut short by its own echo");
  } finally {
    remove();
    log.setLevel("info");
  }
});

Deno.test("a second signal after the first one's echo cuts the stop short, with code 1", async () => {
  log.setLevel("error");
  const { server, started, drains, exits } = stopping();
  const remove = stopOnSignals(server, {
    drainWindowMs: 60_000,
    exit: (code) => exits.push(code),
    echoMs: 0, // every repeat counts as a second signal
  });
  try {
    await terminateSelf(2);
    await started;
    assertEquals(drains(), 1);
    assertEquals(exits, [CUT_SHORT_EXIT_CODE]);
  } finally {
    remove();
    log.setLevel("info");
  }
});

Deno.test("a drain that fails (a Worker that did not stop) ends with code 1 and says why", async () => {
  using captured = new CapturedLog();
  const exited = Promise.withResolvers<number>();
  const server: Stoppable = {
    drain: () => Promise.reject(new Error("worker-2 did not stop within 1.5 s")),
    shutdown: () => Promise.resolve(),
  };
  const remove = stopOnSignals(server, { drainWindowMs: 0, exit: (code) => exited.resolve(code) });
  try {
    await terminateSelf(1);
    assertEquals(await exited.promise, CUT_SHORT_EXIT_CODE);
    await captured.waitFor(/SIGTERM: worker-2 did not stop within 1\.5 s; exiting now/);
    assertEquals(captured.lines.some((line) => line.includes("SIGTERM: stopped")), false);
  } finally {
    remove();
  }
});

// Deno's watcher stops the program for a restart with SIGTERM: taken for an operator's, it
// ended the watcher too, and the first save stopped `deno task dev` for good.
Deno.test("deno task dev serves again after a file changes, and Ctrl-C ends it, the watcher too", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-dev-" });
  const changed = `${dataDir}/changed.txt`;
  await Deno.writeTextFile(changed, "before\n");
  // The task's own command line, run without the task runner in between (a task's child would
  // outlive it), and watching one more file, which the test changes.
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const words = (config.tasks.dev as string).split(" ");
  const assigned = words.filter((word) => /^[A-Z_]+=/.test(word));
  const [deno, ...args] = words.slice(assigned.length);
  assertEquals(deno, "deno");
  assert(args.includes("--watch"), "the dev task does not watch");
  const child = new Deno.Command(Deno.execPath(), {
    args: args.map((arg) => arg === "--watch" ? `--watch=${changed}` : arg),
    env: {
      ...Object.fromEntries(assigned.map((word) => word.split("="))),
      DATA_DIR: dataDir,
      PORT: "0",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const printed = new Waiters();
  const reading = (async () => {
    const merged = [child.stdout, child.stderr].map(async (stream) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        output += text;
        printed.notify();
      }
    });
    await Promise.all(merged);
  })();
  // The URL the server printed at its `count`th start.
  const served = (count: number): Promise<string> =>
    printed.waitFor(
      () => [...output.matchAll(/Serving the chat at (http:\/\/\S+)\/chat\//g)][count - 1]?.[1],
      30_000,
      () => `deno task dev did not serve a time #${count}:\n${output}`,
    );
  try {
    const first = await served(1);
    // Three sockets, which a drain would close over its 5 s window: longer than the watcher
    // waits, so it would cut the drain before the room was written.
    const room = `${first.replace(/^http/, "ws")}/ws/chat/lobby/`;
    const sockets = await Promise.all([1, 2, 3].map(() => TestSocket.open(room)));
    sockets[0].sendJson({ message: "before the save" });
    await sockets[0].nextMatching((frame) => frame.message === "before the save", 10_000);
    await Deno.writeTextFile(changed, "after\n", { append: true });
    // The restart closes the sockets at once, and writes the room before the watcher goes on.
    for (const socket of sockets) assertEquals((await socket.closed).code, 1012);
    const second = await served(2);
    const page = await fetch(`${second}/chat/`);
    await page.body?.cancel();
    assertEquals(page.status, 200, output);
    const again = await TestSocket.open(`${second.replace(/^http/, "ws")}/ws/chat/lobby/`);
    const history = await again.nextMatching(() => true, 10_000);
    assertEquals([history.message, history.history], ["before the save", true], output);
    await again.close();
    assertStringIncludes(output, "SIGTERM: stopped");
    assert(!output.includes("stopped abruptly"), output);
    child.kill("SIGINT");
    const ended = await Promise.race([
      child.status,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000)),
    ]);
    if (ended === null) child.kill("SIGKILL");
    await reading;
    assertEquals(ended === null ? "still running 15 s after Ctrl-C" : "ended", "ended", output);
  } finally {
    // A failed assertion before the Ctrl-C leaves the watcher running: it must not hold the test.
    try {
      child.kill("SIGKILL");
    } catch {
      // it ended
    }
    await child.status;
    await reading;
    await Deno.remove(dataDir, { recursive: true });
  }
});
