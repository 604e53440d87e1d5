/**
 * The fixture of a cross-process presence implementation: two sides opened alike, each with
 * its own layer and tracker over the same shared state, as two server processes have them.
 */
import type { GroupLayer } from "../../layers/layer.ts";
import type { PresenceTracker } from "../../layers/presence/contract.ts";
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
