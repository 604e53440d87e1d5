/**
 * The entry point of one Worker of `deno task start --workers N` (see `workers.ts`): it
 * serves the shared port with `reusePort` until the parent asks it to stop.
 */
/// <reference lib="deno.worker" />
import type { Config } from "./config.ts";
import { type RunningServer, startServer } from "./start.ts";
import type { FromWorker, ToWorker } from "./workers.ts";

let server: RunningServer | null = null;

function tell(message: FromWorker): void {
  self.postMessage(message);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "start") {
    try {
      server = await startServer(message.config as Config, {
        reusePort: true,
        servedBy: self.name,
      });
      tell({ type: "listening", url: server.url });
    } catch (error) {
      tell({ type: "failed", error: (error as Error).message });
    }
  } else if (message.type === "shutdown") {
    await server?.shutdown();
    tell({ type: "stopped" });
  }
};
