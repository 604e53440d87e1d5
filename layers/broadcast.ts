/**
 * The BroadcastChannel + Deno KV layer.
 *
 * Where each part reaches:
 * - **BroadcastChannel** carries the events. It reaches every Worker of one Deno process
 *   (`deno task start --workers N`) and, on Deno Deploy, every isolate of the deployment. It
 *   does NOT reach another OS process or another machine: use the Redis layer for those.
 * - **Deno KV** keeps what must be shared: a registry of which Workers are alive and which
 *   have members of each group, with expiry, refreshed by a heartbeat, from which a send's
 *   result counts the Workers it reached (BroadcastChannel cannot tell). A KV file is
 *   shared by the Workers and processes of one machine that open it; Deploy's KV is global.
 *   Durable state (users, sessions, history) is in the same KV through the store.
 *
 * Delivery follows the Redis layer (both are the shared layer of `_process_layer.ts`): one
 * BroadcastChannel per group with local members, one per Worker for channel sends, "publish
 * then deliver locally" with an origin id so the sender's Worker never delivers twice.
 * BroadcastChannel has no back-pressure and no failure signal: a send to a Worker that has
 * gone is lost (at-most-once, as the layer contract allows). The BroadcastChannel and KV
 * details are in `broadcast_transport.ts`.
 */
import { ProcessLayer } from "./_process_layer.ts";
import { BroadcastTransport, type BroadcastTransportOptions } from "./broadcast_transport.ts";
import { openKv } from "../storage/kv_retry.ts";

/** How a BroadcastChannel layer names its channels and keeps its registry. */
export interface BroadcastLayerOptions extends BroadcastTransportOptions {
  /** Layers with the same prefix hear each other; the Workers of one app share it. */
  prefix: string;
  /** The KV file for the registry; omitted: Deno's default (Deno Deploy's KV). */
  kvPath?: string;
}

/** The group layer on BroadcastChannel, with Deno KV as the registry. */
export class BroadcastLayer extends ProcessLayer {
  /** Opens the KV registry and this Worker's inbox. */
  static async open(options: BroadcastLayerOptions): Promise<BroadcastLayer> {
    const { kvPath, ...transportOptions } = options;
    const transport = new BroadcastTransport(await openKv(kvPath), transportOptions);
    return await new BroadcastLayer(transport).start();
  }
}
