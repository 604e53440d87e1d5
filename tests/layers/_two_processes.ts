/**
 * The fixture of a cross-process presence implementation: two sides opened alike, each with
 * its own layer and tracker over the same shared state, as two server processes have them.
 */
import type { GroupLayer } from "../../layers/layer.ts";
import type {
  PresenceBackend,
  PresenceOptions,
  PresenceTracker,
} from "../../layers/presence/contract.ts";
import { PresenceCore } from "../../layers/presence/core.ts";
import { RECONCILE_EVERY_MS } from "../../layers/presence/_shared.ts";
import type { PresenceFixture } from "./presence/conformance.ts";

/** One process's side: its layer and the tracker that publishes through it. */
export interface PresenceSide {
  layer: GroupLayer;
  tracker: PresenceTracker;
}

/** Opens two sides with `open`: the first is under test, the second is its `peer`. */
export async function twoProcesses(open: () => Promise<PresenceSide>): Promise<PresenceFixture> {
  const [here, there] = [await open(), await open()];
  return {
    ...here,
    peer: there,
    async [Symbol.asyncDispose]() {
      for (const side of [here, there]) {
        await side.tracker.close();
        await side.layer.close();
      }
    },
  };
}

/**
 * {@linkcode twoProcesses} where each side is a {@linkcode PresenceCore} over the layer and
 * backend `open` gives, re-checking as a tracker over shared state does in production.
 */
export function twoCores(
  options: PresenceOptions,
  open: () => Promise<{ layer: GroupLayer; backend: PresenceBackend }>,
): Promise<PresenceFixture> {
  return twoProcesses(async () => {
    const { layer, backend } = await open();
    const reconciling = { ...options, reconcileEveryMs: RECONCILE_EVERY_MS };
    return { layer, tracker: new PresenceCore(layer, backend, reconciling) };
  });
}
