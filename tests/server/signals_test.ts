/**
 * `stopOnSignals`, as an app of one's own uses it (`tests/fixtures/signals/app.ts`): SIGTERM
 * and SIGINT stop the process gracefully, so the in-process streams are written on the way out
 * and the next run has the same room, epoch and offsets (clients then recover completely).
 */
import { assertEquals, assertStringIncludes } from "@std/assert";

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
  let printed = "";
  while (!printed.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
  }
  const position = JSON.parse(printed.split("\n")[0] || "{}") as { epoch: string; offset: number };
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
