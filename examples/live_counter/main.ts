/** `deno task start`: serves the live counter on http://127.0.0.1:8001/. */
import { createServices, loadConfig, openBackends, serveApp, stopOnSignals } from "@channels/deno";
import { createCounterApp } from "./counter.ts";

if (import.meta.main) {
  const config = loadConfig(Deno.args, { PORT: "8001", ...Deno.env.toObject() });
  const backends = await openBackends(config);
  const app = createCounterApp(createServices(config, backends));
  const server = await serveApp(app, {
    hostname: config.host,
    port: config.port,
    onClosed: backends.close,
  });
  console.log(`Live counter at ${server.url}/`);
  // SIGTERM drains, SIGINT stops at once; either way the backends are written and closed.
  stopOnSignals(server, { drainWindowMs: config.drainWindowMs });
}
