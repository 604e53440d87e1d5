/**
 * The parent of `--workers` (`workers.ts`) as the Workers' stream sequencer: it holds DATA_DIR,
 * prepares the KV file the Workers share before any of them opens it, and gives every offset
 * of the retained streams (`StreamSequencer`).
 */
import { type Config, historyIdleMs } from "./config.ts";
import { broadcastPrefix } from "./backends.ts";
import { log } from "../telemetry/log.ts";
import { StreamSequencer } from "../layers/streams/sequencer.ts";
import { importKvStreams } from "../layers/streams/import_kv_streams.ts";
import { forgetRegistry } from "../layers/broadcast_registry.ts";
import { DenoKvStore } from "../storage/deno_kv_store.ts";
import { kvPath } from "../storage/kv_path.ts";
import { lockDataDir } from "../storage/data_dir_lock.ts";

/** The parent's stream sequencer with the KV file it writes to, closed together. */
export interface OpenSequencer {
  /** A port for one Worker's streams. */
  connect(): MessagePort;
  /** Writes what the sequencer holds, then lets go of the file and of DATA_DIR. */
  close(): Promise<void>;
}

/** Takes DATA_DIR, prepares the Workers' KV file and opens the sequencer on it. */
export async function openSequencer(config: Config): Promise<OpenSequencer> {
  // The Workers open the same file for the rest of their state; the parent holds DATA_DIR.
  const path = await kvPath(config.dataDir);
  const lock = path === undefined ? null : await lockDataDir(config.dataDir);
  let store: DenoKvStore | null = null;
  try {
    store = await DenoKvStore.open(path);
    await prepareFile(store, config, path);
  } catch (error) {
    store?.close(); // null when the open itself failed
    lock?.close();
    throw error;
  }
  const opened = store;
  const sequencer = new StreamSequencer(opened, {
    retention: config.historyWindow,
    memoryBudget: config.historyMemoryMb * 1024 * 1024,
    idleExpiryMs: historyIdleMs(config),
  });
  return {
    connect: () => sequencer.connect(),
    close: async () => {
      try {
        await sequencer.close();
      } finally {
        opened.close();
        lock?.close();
      }
    },
  };
}

// Before any Worker opens the file: the streams of the old layout moved, and what a run that did
// not stop (SIGKILL, a crash, a Worker that failed) left in the layer's registry forgotten. This
// process holds DATA_DIR, so no Worker of another process is alive in that file.
async function prepareFile(
  store: DenoKvStore,
  config: Config,
  path: string | undefined,
): Promise<void> {
  let moved: number;
  try {
    moved = await importKvStreams(store, config.redisPrefix, historyIdleMs(config));
  } catch (error) {
    throw new Error(`The Workers' streams could not be moved to the new layout: ${error}`);
  }
  if (moved > 0) log.info(`Streams: ${moved} room(s) moved from the Workers' old KV layout`);
  if (path === undefined) return; // Deploy's KV: no DATA_DIR held, nothing known dead
  const forgotten = await forgetRegistry(store, broadcastPrefix(config.redisPrefix, path));
  if (forgotten > 0) {
    log.info(`Workers: ${forgotten} registry entries left by a run that did not stop forgotten`);
  }
}
