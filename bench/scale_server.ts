/**
 * The bench's "several processes" server: `--processes N` starts N server processes that
 * share one port with `reusePort` (the kernel spreads connections over them, as a load
 * balancer in front of N machines would), joined by whatever `LAYER` says (Redis, for the
 * scale-out scenarios). With `--processes 1` it is one server process, like `main.ts`.
 *
 * `deno run -A --unstable-kv --unstable-net bench/scale_server.ts --processes 2 --port 8001`
 */
import { loadConfig } from "../server/config.ts";
import { startSite } from "../routes/start.ts";
import { START_TASK_FLAGS } from "./_start_task.ts";

// Each process runs as `deno task start` runs main.ts.
const FLAGS = ["run", ...START_TASK_FLAGS];

function parse(args: string[]): { processes: number; rest: string[] } {
  const at = args.indexOf("--processes");
  if (at < 0) return { processes: 1, rest: args };
  const processes = Number(args[at + 1]);
  if (!Number.isInteger(processes) || processes < 1) throw new Error("--processes must be >= 1");
  return { processes, rest: [...args.slice(0, at), ...args.slice(at + 2)] };
}

async function serveOne(args: string[]): Promise<void> {
  const config = loadConfig(args, Deno.env.toObject());
  const server = await startSite(config, { reusePort: true });
  console.log(`Serving the chat at ${server.url}/chat/ (one of several processes)`);
  const stop = async () => {
    setTimeout(() => Deno.exit(0), 5000); // as main.ts: out within 5 s, whatever hangs
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  // A child of the launcher ends with it, even when the launcher was killed outright.
  const parent = Deno.ppid;
  setInterval(() => {
    if (Deno.ppid !== parent) Deno.exit(1);
  }, 500);
}

async function serveMany(processes: number, args: string[]): Promise<void> {
  const children = Array.from({ length: processes }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [...FLAGS, new URL(import.meta.url).pathname, "--processes", "1", ...args],
      stdin: "null",
    }).spawn());
  const stop = async (code = 0) => {
    for (const child of children) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await Promise.all(children.map((child) => child.status));
    Deno.exit(code);
  };
  Deno.addSignalListener("SIGTERM", () => stop());
  Deno.addSignalListener("SIGINT", () => stop());
  // One child failing fails the whole server, as one machine of a cluster would be noticed.
  const first = await Promise.race(children.map((child) => child.status));
  console.error(`A server process exited with ${first.code}`);
  await stop(1);
}

if (import.meta.main) {
  const { processes, rest } = parse(Deno.args);
  if (processes === 1) await serveOne(rest);
  else await serveMany(processes, rest);
}
