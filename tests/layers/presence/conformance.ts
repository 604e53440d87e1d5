/**
 * The presence conformance suite: every {@linkcode PresenceTracker} implementation runs these
 * tests unchanged, with a fake clock so grace periods and coalescing windows pass without
 * sleeping. An implementation's test file is a few lines:
 *
 * ```ts
 * presenceConformance("local", async (options) => {
 *   const layer = new InMemoryLayer();
 *   const tracker = createLocalPresence(layer, options);
 *   return { tracker, layer, async [Symbol.asyncDispose]() { await tracker.close(); await layer.close(); } };
 * });
 * ```
 *
 * When the implementation spans processes, pass `{ crossProcess: true }` and give the fixture
 * a `peer`: a second tracker on its own layer, over the same shared state, as another process
 * would have it. The cross-process tests run only then.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { GroupLayer } from "../../../layers/layer.ts";
import {
  PRESENCE_DIFF,
  PRESENCE_END_SESSION,
  PRESENCE_GROUP,
  type PresenceDiff,
  presenceGroup,
  type PresenceOptions,
  type PresenceTracker,
} from "../../../layers/presence/contract.ts";
import { FakeClock } from "../_fake_clock.ts";
import { Inbox } from "../_inbox.ts";

/** A tracker under test and what the suite needs around it. */
export interface PresenceFixture extends AsyncDisposable {
  tracker: PresenceTracker;
  /** The layer the tracker publishes through; the suite subscribes to it. */
  layer: GroupLayer;
  /** Another process's tracker over the same shared state, for cross-process implementations. */
  peer?: { tracker: PresenceTracker; layer: GroupLayer };
}

/** Builds a fixture; it must use `options.clock` for every timer. */
export type PresenceFactory = (
  options: PresenceOptions & { clock: FakeClock; coalesceMs: number },
) => Promise<PresenceFixture>;

const GRACE_MS = 3000;
const WINDOW_MS = 50;
const SENTINEL = "zz-sentinel";

/** Registers the suite's tests for one implementation. */
export function presenceConformance(
  name: string,
  factory: PresenceFactory,
  options: { ignore?: boolean; timeoutMs?: number; crossProcess?: boolean } = {},
): void {
  const timeoutMs = options.timeoutMs ?? 2000;

  async function setUp(): Promise<Harness> {
    const clock = new FakeClock();
    const fixture = await factory({ graceMs: GRACE_MS, coalesceMs: WINDOW_MS, clock });
    const inbox = new Inbox(fixture.layer, timeoutMs);
    await fixture.layer.groupAdd(PRESENCE_GROUP, inbox.channel);
    return new Harness(fixture, clock, inbox, timeoutMs);
  }

  const test = (title: string, fn: (h: Harness) => Promise<void>, crossProcess = false) => {
    // A case that does not apply is not registered: "ignored" is kept for missing services.
    if (crossProcess && !options.crossProcess) return;
    Deno.test({
      name: `presence ${name}: ${title}`,
      ignore: options.ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        const h = await setUp();
        try {
          if (crossProcess) assert(h.fixture.peer, "crossProcess needs the fixture's peer");
          await fn(h);
        } finally {
          await h.fixture[Symbol.asyncDispose]();
        }
      },
    });
  };

  test("a tracked user is announced online to subscribers", async (h) => {
    await h.tracker.track("ada", "c1", { device: "laptop" });
    await h.tracker.flush();
    await h.untilJoined("ada");
    assertEquals((await h.tracker.state()).online, ["ada"]);
  });

  test("changes inside one window reach subscribers as a single diff", async (h) => {
    for (const user of ["ada", "bob", "cy"]) await h.tracker.track(user, `c-${user}`);
    h.clock.advance(WINDOW_MS);
    await h.untilJoined("cy");
    assertEquals(h.diffs().length, 1);
    assertEquals(h.diffs()[0].joins, ["ada", "bob", "cy"]);
  });

  test("a join and a leave inside one window cancel out", async (h) => {
    await h.tracker.track("ghost", "c1");
    await h.tracker.untrack("c1");
    await h.tracker.track("bob", "c2");
    h.clock.advance(WINDOW_MS);
    await h.untilJoined("bob");
    assertEquals(h.mentions("ghost"), 0);
    assertEquals((await h.tracker.state()).online, ["bob"]);
  });

  test("a user with two connections stays online while one remains", async (h) => {
    await h.tracker.track("ada", "tab1");
    await h.tracker.track("ada", "tab2");
    await h.tracker.flush();
    await h.tracker.untrack("tab1");
    await h.sentinel();
    assertEquals(h.leaves("ada"), 0);
    assertEquals((await h.tracker.state()).online, ["ada", SENTINEL]);
    await h.tracker.untrack("tab2");
    await h.tracker.flush();
    await h.untilLeft("ada");
  });

  test("a closed tab keeps its user online until the grace period ends", async (h) => {
    await h.tracker.track("ada", "tab1");
    await h.tracker.flush();
    await h.tracker.untrack("tab1", { grace: true });
    h.clock.advance(GRACE_MS - 1);
    await h.sentinel();
    assertEquals(h.leaves("ada"), 0);
    assert((await h.tracker.state()).online.includes("ada"));
    h.clock.advance(1);
    await h.tracker.flush();
    await h.untilLeft("ada");
    assertEquals((await h.tracker.state()).online, [SENTINEL]);
  });

  test("a reload within the grace period shows no change at all", async (h) => {
    await h.tracker.track("ada", "old-page", { page: "old" });
    await h.tracker.flush();
    await h.tracker.untrack("old-page", { grace: true });
    await h.tracker.track("ada", "new-page", { page: "new" });
    h.clock.advance(GRACE_MS * 2);
    await h.sentinel();
    assertEquals(h.leaves("ada"), 0);
    assertEquals(h.joins("ada"), 1);
    assertEquals((await h.tracker.list()).ada, [{ page: "new" }], "the leaving page is replaced");
  });

  test("untracking without grace ends a connection's grace period at once", async (h) => {
    await h.tracker.track("ada", "tab1");
    await h.tracker.flush();
    await h.tracker.untrack("tab1", { grace: true });
    await h.tracker.untrack("tab1");
    await h.tracker.flush();
    await h.untilLeft("ada");
  });

  test("ending a session untracks its connections at once, even those in grace", async (h) => {
    await h.tracker.track("ada", "closed-tab", { session: "s1" });
    await h.tracker.track("ada", "open-tab", { session: "s1" });
    await h.tracker.track("ada", "phone", { session: "s2" });
    await h.tracker.track("bob", "desk", { session: "s3" });
    await h.tracker.flush();
    await h.tracker.untrack("closed-tab", { grace: true });
    await h.tracker.untrackSession("s1");
    await h.tracker.flush();
    assertEquals((await h.tracker.list()).ada, [{ session: "s2" }]);
    await h.tracker.untrack("phone");
    await h.tracker.flush();
    await h.untilLeft("ada");
    assertEquals((await h.tracker.state()).online, ["bob"]);
  });

  test("no ghost remains once every connection is gone", async (h) => {
    const ids = [];
    for (let i = 0; i < 30; i++) {
      const id = `c${i}`;
      ids.push(id);
      await h.tracker.track(`user${i % 7}`, id);
      if (i % 4 === 0) await h.tracker.untrack(ids.shift()!, { grace: i % 8 === 0 });
    }
    h.clock.advance(WINDOW_MS);
    for (const id of ids) await h.tracker.untrack(id, { grace: true });
    h.clock.advance(GRACE_MS);
    await h.tracker.flush();
    await h.sentinel();
    assertEquals((await h.tracker.state()).online, [SENTINEL]);
    assertEquals(h.replay([]), [SENTINEL], "subscribers that applied every diff agree");
  });

  test("state plus every later diff is always the truth", async (h) => {
    await h.tracker.track("early", "c1");
    await h.tracker.flush();
    await h.untilJoined("early");
    const seenBefore = h.diffs().length;
    await h.tracker.track("brief", "c2");
    const state = await h.tracker.state();
    await h.tracker.untrack("c2");
    await h.tracker.track("late", "c3");
    await h.tracker.flush();
    await h.untilJoined("late");
    assertEquals(h.replay(state.online, seenBefore), ["early", "late"]);
  });

  test("list gives the metas of every connection by user", async (h) => {
    await h.tracker.track("ada", "phone", { device: "phone" });
    await h.tracker.track("ada", "laptop", { device: "laptop" });
    await h.tracker.track("bob", "desk", { device: "desk" });
    const list = await h.tracker.list();
    assertEquals(list.ada.map((meta) => meta.device).sort(), ["laptop", "phone"]);
    assertEquals(list.bob, [{ device: "desk" }]);
  });

  test("the feed lists who connected and disconnected, oldest first", async (h) => {
    await h.tracker.track("ada", "c1");
    await h.tracker.flush();
    await h.untilJoined("ada");
    await h.tracker.untrack("c1");
    await h.tracker.flush();
    await h.untilLeft("ada");
    const { recent } = await h.tracker.state();
    assertEquals(recent.map((e) => `${e.username} ${e.status}`), [
      "ada connected",
      "ada disconnected",
    ]);
    assert(recent.every((event) => !Number.isNaN(Date.parse(event.time))));
  });

  test("untracking an unknown connection does nothing", async (h) => {
    await h.tracker.untrack("never-tracked");
    await h.tracker.untrack("never-tracked", { grace: true });
    await h.sentinel();
    assertEquals(h.diffs().length, 1);
  });

  test("closing untracks every connection, even in grace, and announces it", async (h) => {
    await h.tracker.track("ada", "c1");
    await h.tracker.track("bob", "c2");
    await h.tracker.flush();
    await h.untilJoined("bob");
    await h.tracker.untrack("c2", { grace: true });
    await h.tracker.close();
    await h.untilLeft("ada");
    await h.untilLeft("bob");
    await assertRejects(() => h.tracker.track("cy", "c3"), Error, "closed");
  });

  test("two topics are independent of each other and of the site topic", async (h) => {
    const lobby = await h.topicInbox("chat.lobby");
    const other = await h.topicInbox("chat.other");
    await h.tracker.track("ada", "c1", {}, "chat.lobby");
    await h.tracker.track("bob", "c2", {}, "chat.other");
    await h.tracker.flush();
    await lobby.until(() => lobby.events.length > 0, "a diff of the lobby");
    await other.until(() => other.events.length > 0, "a diff of the other room");
    assertEquals(lobby.events, [diffOf(lobby.events[0], ["ada"], [], "chat.lobby")]);
    assertEquals(other.events, [diffOf(other.events[0], ["bob"], [], "chat.other")]);
    assertEquals((await h.tracker.state("chat.lobby")).online, ["ada"]);
    assertEquals((await h.tracker.state("chat.other")).online, ["bob"]);
    await h.sentinel();
    assertEquals(h.mentions("ada") + h.mentions("bob"), 0, "the site topic heard nothing");
    assertEquals((await h.tracker.state()).online, [SENTINEL]);
    assertEquals(Object.keys(await h.tracker.list("chat.lobby")), ["ada"]);
  });

  test("a topic whose name holds ':' shares nothing with another topic's users", async (h) => {
    // Room "r:user" and user "meta" of room "r": joined naively, their keys would be one.
    await h.tracker.track("ada", "c1", {}, "chat.r:user");
    await h.tracker.track("meta", "c2", {}, "chat.r");
    await h.tracker.track("online", "c3", {}, "chat.r");
    await h.tracker.track("bob", "c4", {}, "chat.r:user:online");
    await h.tracker.flush();
    assertEquals((await h.tracker.state("chat.r:user")).online, ["ada"]);
    assertEquals((await h.tracker.state("chat.r")).online, ["meta", "online"]);
    assertEquals((await h.tracker.state("chat.r:user:online")).online, ["bob"]);
    assertEquals(Object.keys(await h.tracker.list("chat.r:user")), ["ada"]);
  });

  test("a user in two topics leaves one and stays in the other", async (h) => {
    const lobby = await h.topicInbox("chat.lobby");
    await h.tracker.track("ada", "site-tab");
    await h.tracker.track("ada", "room-tab", { session: "s1" }, "chat.lobby");
    await h.tracker.flush();
    await h.untilJoined("ada");
    await lobby.until(() => lobby.events.length > 0, "ada joining the lobby");
    await h.tracker.untrack("room-tab", { grace: true });
    h.clock.advance(GRACE_MS);
    await h.tracker.flush();
    await lobby.until(() => lobby.events.length > 1, "ada leaving the lobby");
    assertEquals((lobby.events[1] as PresenceDiff).leaves, ["ada"]);
    assertEquals((await h.tracker.state("chat.lobby")).online, []);
    await h.sentinel();
    assertEquals(h.leaves("ada"), 0);
    assertEquals((await h.tracker.state()).online, ["ada", SENTINEL]);
  });

  test("ending a session untracks its connections in every topic", async (h) => {
    const lobby = await h.topicInbox("chat.lobby");
    await h.tracker.track("ada", "site-tab", { session: "s1" });
    await h.tracker.track("ada", "room-tab", { session: "s1" }, "chat.lobby");
    await h.tracker.flush();
    await lobby.until(() => lobby.events.length > 0, "ada joining the lobby");
    await h.tracker.untrackSession("s1");
    await h.tracker.flush();
    await h.untilLeft("ada");
    await lobby.until(() => lobby.events.length > 1, "ada leaving the lobby");
    assertEquals(await h.tracker.list("chat.lobby"), {});
  });

  // A log-out while a chat socket's `connect` tracks it in its room (a topic it is the first
  // to join): the session's end comes after the track, so the user must end up gone.
  test("a session ended or a connection untracked while it is being tracked leaves no ghost", async (h) => {
    const tracking = [
      h.tracker.track("ada", "room-tab", { session: "s1" }, "chat.first"),
      h.tracker.track("bob", "other-tab", { session: "s2" }, "chat.second"),
    ];
    await Promise.all([h.tracker.untrackSession("s1"), h.tracker.untrack("other-tab")]);
    await Promise.all(tracking);
    await h.tracker.flush();
    assertEquals(await h.tracker.list("chat.first"), {}, "ada kept as a ghost");
    assertEquals(await h.tracker.list("chat.second"), {}, "bob kept as a ghost");
    assertEquals((await h.tracker.state("chat.first")).online, []);
  });

  test("a topic's group name is valid, and the site topic's is the old one", () => {
    assertEquals(presenceGroup("site"), PRESENCE_GROUP);
    assertEquals(presenceGroup("chat.café"), "presence.chat.café");
    for (const bad of ["", "a\nb", "x".repeat(191)]) {
      let threw = false;
      try {
        presenceGroup(bad);
      } catch {
        threw = true;
      }
      assert(threw, `${JSON.stringify(bad)} was accepted`);
    }
    return Promise.resolve();
  });

  test("a user online in two processes stays online until both are gone", async (h) => {
    const peer = h.fixture.peer!;
    await h.tracker.track("ada", "here");
    await peer.tracker.track("ada", "there");
    await h.tracker.flush();
    await peer.tracker.flush();
    await h.untilJoined("ada");
    await h.tracker.untrack("here");
    await h.sentinel();
    assertEquals(h.leaves("ada"), 0);
    await peer.tracker.untrack("there");
    await peer.tracker.flush();
    await h.untilLeft("ada");
  }, true);

  test("a log-out in one process ends the session's tabs in the other", async (h) => {
    const peer = h.fixture.peer!;
    await peer.tracker.track("ada", "there", { session: "s1" });
    await peer.tracker.flush();
    await h.untilJoined("ada");
    await peer.tracker.untrack("there", { grace: true });
    // The peer process hears the log-out on its own layer, then publishes the leave.
    const peerInbox = new Inbox(peer.layer, h.timeoutMs);
    await peer.layer.groupAdd(PRESENCE_GROUP, peerInbox.channel);
    await h.tracker.untrackSession("s1");
    await peerInbox.receives(PRESENCE_END_SESSION);
    await peer.tracker.flush();
    await h.untilLeft("ada");
  }, true);

  test("a user in a topic on two processes stays until both are gone", async (h) => {
    const peer = h.fixture.peer!;
    const lobby = await h.topicInbox("chat.lobby");
    await h.tracker.track("ada", "here", {}, "chat.lobby");
    await peer.tracker.track("bob", "there", {}, "chat.lobby");
    await peer.tracker.track("ada", "there-too", {}, "chat.lobby");
    await h.tracker.flush();
    await peer.tracker.flush();
    const joined = () => new Set(lobby.events.flatMap((e) => (e as PresenceDiff).joins));
    await lobby.until(() => joined().has("ada") && joined().has("bob"), "ada and bob joining");
    assertEquals((await h.tracker.state("chat.lobby")).online, ["ada", "bob"]);
    assertEquals((await peer.tracker.state("chat.lobby")).online, ["ada", "bob"]);
    await h.tracker.untrack("here");
    await h.tracker.flush();
    await peer.tracker.untrack("there-too");
    await peer.tracker.flush();
    const left = () => lobby.events.flatMap((e) => (e as PresenceDiff).leaves);
    await lobby.until(() => left().includes("ada"), "ada leaving the lobby");
    assertEquals((await h.tracker.state("chat.lobby")).online, ["bob"]);
  }, true);

  test("a change in one process shows in the other's state", async (h) => {
    const peer = h.fixture.peer!;
    await peer.tracker.track("bob", "there");
    await peer.tracker.flush();
    await h.untilJoined("bob");
    assertEquals((await h.tracker.state()).online, ["bob"]);
  }, true);
}

/** One test's tracker, clock and subscriber, with the questions the tests ask. */
class Harness {
  readonly fixture: PresenceFixture;
  readonly tracker: PresenceTracker;
  readonly clock: FakeClock;
  readonly inbox: Inbox;
  readonly timeoutMs: number;

  constructor(fixture: PresenceFixture, clock: FakeClock, inbox: Inbox, timeoutMs: number) {
    this.fixture = fixture;
    this.timeoutMs = timeoutMs;
    this.tracker = fixture.tracker;
    this.clock = clock;
    this.inbox = inbox;
  }

  diffs(): PresenceDiff[] {
    return this.inbox.events.filter((e) => e.type === PRESENCE_DIFF) as PresenceDiff[];
  }

  joins(user: string): number {
    return this.diffs().filter((diff) => diff.joins.includes(user)).length;
  }

  leaves(user: string): number {
    return this.diffs().filter((diff) => diff.leaves.includes(user)).length;
  }

  mentions(user: string): number {
    return this.joins(user) + this.leaves(user);
  }

  untilJoined(user: string): Promise<void> {
    return this.inbox.until(() => this.joins(user) > 0, `a diff with "${user}" joining`);
  }

  untilLeft(user: string): Promise<void> {
    return this.inbox.until(() => this.leaves(user) > 0, `a diff with "${user}" leaving`);
  }

  /**
   * Tracks a marker user and waits for its join: every diff published before it has arrived
   * by then (one sender, one group: in order), so "no diff about X" can be asserted.
   */
  async sentinel(): Promise<void> {
    await this.tracker.track(SENTINEL, `${SENTINEL}-${this.diffs().length}`);
    await this.tracker.flush();
    await this.untilJoined(SENTINEL);
  }

  /** A subscriber to one topic's diffs. */
  async topicInbox(topic: string): Promise<Inbox> {
    const inbox = new Inbox(this.fixture.layer, this.timeoutMs);
    await this.fixture.layer.groupAdd(presenceGroup(topic), inbox.channel);
    return inbox;
  }

  /** The online users a subscriber ends with: `initial`, then the diffs from `from` on. */
  replay(initial: string[], from = 0): string[] {
    const online = new Set(initial);
    for (const diff of this.diffs().slice(from)) {
      diff.joins.forEach((user) => online.add(user));
      diff.leaves.forEach((user) => online.delete(user));
    }
    return [...online].sort();
  }
}

/** `event` checked as a topic diff with these joins and leaves. */
function diffOf(event: unknown, joins: string[], leaves: string[], topic: string): PresenceDiff {
  const diff = event as PresenceDiff;
  return { type: PRESENCE_DIFF, joins, leaves, time: diff.time, topic };
}
