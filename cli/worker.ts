/**
 * `deno task worker <channel>...`: runs the site's background workers (Channels' `runworker`)
 * in a process of their own, with the server's configuration and layer, until SIGINT, SIGTERM
 * or SIGHUP. E.g. `LAYER=redis deno task worker dice` answers the chat's `/roll 2d6` for every
 * server on that Redis. Flags after the names are configuration flags (`--layer redis`).
 *
 * Only a layer that crosses processes (Redis) reaches a worker process; with the in-process
 * layers the server runs its workers itself (`IN_PROCESS_WORKERS`, default `all` there).
 */
import { siteWorkers } from "../routes/workers.ts";
import { runWorkerProcess } from "../mod.ts";

if (import.meta.main) Deno.exit(await runWorkerProcess(Deno.args, siteWorkers));
