/**
 * `deno task worker jobs` with a worker whose "hang" handler never returns (a user's bug), for
 * the tests of how a worker process stops; "note" events are handled at once.
 */
import { channelNameRouter, type ChannelWorker, log } from "../../mod.ts";
import { runWorkerProcess } from "../../mod.ts";

const jobs: ChannelWorker = () => ({
  events: {
    hang: () => {
      log.info("Handling a hang event: it never returns");
      return new Promise<void>(() => {});
    },
    note: () => log.info("Handled a note event"),
  },
});

Deno.exit(await runWorkerProcess(Deno.args, () => channelNameRouter({ jobs })));
