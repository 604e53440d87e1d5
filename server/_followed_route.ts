/**
 * What the sockets of one route that follow streams share (`stream_follower.ts`): its streams
 * and options, reads of the same gap shared while under way, and the one keeping of each event
 * that came from outside this framework.
 */
import type { LayerEvent } from "../layers/layer.ts";
import type {
  GroupStreams,
  PublishOptions,
  StreamRead,
  StreamRetention,
} from "../layers/streams/contract.ts";
import { log } from "../telemetry/log.ts";
import type { FrameOf, KeepForeignAs, StreamReads } from "./_stream_entry.ts";

/** What the followers of one route share. */
export interface FollowedRoute {
  /** The streams the entry reads: not shared, see `liveReads`. */
  readonly streams: GroupStreams;
  readonly historySize: number;
  readonly frameOf: FrameOf;
  /** Each frame is at least as long as its event (see `StreamFollowingOptions`). */
  readonly framesKeepEvents: boolean;
  /**
   * Reads for sockets already in their group, shared while under way. Only for those: they
   * receive live whatever a shared read started too early to hold, which an entering socket,
   * not yet a member when the read began, would not.
   */
  readonly liveReads: StreamReads;
  /**
   * The kept copy of an event from outside this framework, once per event for all the route's
   * sockets here (`null`: send it as it came); `null` when the route keeps none.
   */
  readonly keptForeign: ((event: LayerEvent, group: string) => Promise<LayerEvent | null>) | null;
}

/** The route's shared part, from `StreamFollowing`'s options. */
export function followedRoute(
  streams: GroupStreams,
  options: {
    historySize: number;
    frameOf?: FrameOf;
    framesKeepEvents?: boolean;
    keepForeign?: KeepForeignAs;
    retention?: StreamRetention;
  },
): FollowedRoute {
  const keepAs = options.keepForeign;
  return {
    streams,
    historySize: options.historySize,
    frameOf: options.frameOf ?? ((event) => event),
    framesKeepEvents: options.framesKeepEvents ?? options.frameOf === undefined,
    liveReads: sharedReads(streams),
    keptForeign: keepAs === undefined || streams.keepForeign === undefined
      ? null
      : foreignKeeper(streams, keepAs, { retention: options.retention }),
  };
}

// Keeps each foreign event once per process, for all the sockets that received it. One that
// cannot be kept (the store is away) is sent as what it would have been kept as, with no
// offset: its id is the one the kept copy has where another process kept it, so a page that
// gets both (this copy live, the kept one when a gap is read) shows it once.
function foreignKeeper(
  streams: GroupStreams,
  keepAs: KeepForeignAs,
  options: PublishOptions,
): (event: LayerEvent, group: string) => Promise<LayerEvent | null> {
  const keeping = new WeakMap<LayerEvent, Promise<LayerEvent | null>>();
  // Each group's last event: the next one's answer waits for it, so events are sent in the
  // order they came (a Django send to one channel, answered at once, must not overtake the group
  // send before it, which waits for Redis).
  const last = new Map<string, Promise<unknown>>();
  return (event, group) => {
    let kept = keeping.get(event);
    if (kept === undefined) {
      const as = keepAs(event, group, streams.foreignIdOf?.(event));
      const keep = as === null ? null : streams.keepForeign!(group, event, as, options)
        .then((kept) => kept ?? as, (error) => {
          log.warn(
            `An event from outside to "${group}" was sent but not kept in its stream`,
            error,
          );
          return as;
        });
      const before = last.get(group);
      const answer: Promise<LayerEvent | null> = before === undefined
        ? keep ?? Promise.resolve(null)
        : before.then(() => keep);
      last.set(group, answer);
      void answer.then(() => {
        if (last.get(group) === answer) last.delete(group);
      });
      kept = answer;
      keeping.set(event, kept);
    }
    return kept;
  };
}

function sharedReads(streams: GroupStreams): StreamReads {
  const reads = new Map<string, Promise<StreamRead>>();
  const shared = (key: string, read: () => Promise<StreamRead>) => {
    let pending = reads.get(key);
    if (pending === undefined) {
      pending = read();
      reads.set(key, pending);
      pending.finally(() => reads.delete(key)).catch(() => {});
    }
    return pending;
  };
  return {
    // The hint is the route's, not a socket's (see `enterStream`): sockets still share reads.
    since: (group, position, options) =>
      shared(
        `since\n${position.epoch}\n${position.offset}\n${options?.maxBytes}\n` +
          `${options?.pageBytes}\n${group}`,
        () => streams.since(group, position, options),
      ),
    latest: (group, count) =>
      shared(`latest\n${count}\n${group}`, () => streams.latest(group, count)),
  };
}
