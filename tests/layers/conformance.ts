/**
 * The group layer conformance suite: written once, run unchanged against every
 * {@linkcode GroupLayer} implementation. Each point of the contract in `layers/layer.ts` is a
 * case here.
 *
 * Use, from a five-line test file per implementation:
 *
 * ```ts
 * import { layerConformance } from "./conformance.ts";
 * import { RedisLayer } from "../../layers/redis.ts";
 * layerConformance("redis layer", () => RedisLayer.open(url), { shared: true });
 * ```
 *
 * - `open()` is called once per layer instance a case needs, and the suite closes every
 *   layer it opened. Each call stands for one process.
 * - `shared: true` says two layers from `open()` reach each other (a broker, a
 *   BroadcastChannel): every case then also runs "across processes", with the members on one
 *   layer and the sender on another. Without it (the in-memory layer, where two instances are
 *   separate worlds) the cases run in one layer only.
 * - `timeoutMs` bounds every wait for a delivery (default 5000). Deliveries are awaited, never
 *   slept for; "receives nothing" is checked by sending a later event that a witness member
 *   awaits, then asserting the earlier one did not arrive.
 * - `ignore`, `sanitizeOps` and `sanitizeResources` are passed to each `Deno.test` (e.g.
 *   `ignore` when the broker is not running).
 * - `groupNames` replaces the contract's name rule for a layer that must keep a narrower one
 *   (channels_redis shares groups with Django, whose names are ASCII under 100 characters).
 *
 * Events are awaited after `groupAdd` resolved, as the contract allows: from then on, events
 * sent from any process reach the new member.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { GroupLayer, LayerEvent, SendResult } from "../../layers/layer.ts";
import { Inbox } from "./_inbox.ts";

/** Options of {@linkcode layerConformance}. */
export interface ConformanceOptions {
  /** Two layers from `open()` talk to each other: also run the cases across processes. */
  shared?: boolean;
  /** How long to wait for one delivery before failing, in milliseconds. */
  timeoutMs?: number;
  ignore?: boolean;
  sanitizeOps?: boolean;
  sanitizeResources?: boolean;
  /** The layer's own group-name rule, when narrower than the contract's. */
  groupNames?: GroupNameRule;
  /** The layer carries bytes (`Uint8Array`) in events, as channels_redis does; else refuses them. */
  carriesBytes?: boolean;
}

/** Group names a layer accepts and refuses, with the words the two cases' titles use. */
export interface GroupNameRule {
  /** Names it must accept; a run tag replaces the end of those at `maxLength`. */
  valid: string[];
  /** The longest valid name, in code points. */
  maxLength: number;
  /** Names it must refuse with a `TypeError`, each with what is wrong with it. */
  invalid: [string, string][];
  /** Completes "… are valid group names". */
  validTitle: string;
  /** Completes "… group names are refused". */
  invalidTitle: string;
}

/** Where a case runs: members live in `member`, events are sent from `sender`. */
export interface LayerPair {
  readonly sender: GroupLayer;
  readonly member: GroupLayer;
  /** True when `sender` and `member` are different layers (processes). */
  readonly cross: boolean;
  /** A group name unique to this run, so cases on a shared broker do not meet. */
  group(name: string): string;
  /** A new channel on `layer` that records what it receives. */
  inbox(layer: GroupLayer): Inbox;
  /** A recorder for a named channel's listener: pass its `deliver` to `listen`. */
  listener(): Inbox;
  /** The group-name rule the layer keeps. */
  readonly names: GroupNameRule;
  /** See {@linkcode ConformanceOptions.carriesBytes}. */
  readonly carriesBytes: boolean;
}

type Case = (pair: LayerPair) => Promise<void>;
/** A case's title, or how to make it from the layer's group-name rule. */
type Title = string | ((names: GroupNameRule) => string);

/** Registers the conformance cases for the layer that `open` creates. */
export function layerConformance(
  name: string,
  open: () => Promise<GroupLayer>,
  options: ConformanceOptions = {},
): void {
  const topologies = options.shared ? [false, true] : [false];
  const names = options.groupNames ?? CONTRACT_NAMES;
  for (const [title, run, once] of CASES) {
    for (const cross of once ? [false] : topologies) {
      const where = cross ? "across two processes" : "in one process";
      const what = typeof title === "string" ? title : title(names);
      Deno.test({
        name: `${name}: ${what} (${where})`,
        ignore: options.ignore,
        sanitizeOps: options.sanitizeOps,
        sanitizeResources: options.sanitizeResources,
        fn: () =>
          withPair(open, cross, options.timeoutMs ?? 5000, names, options.carriesBytes, run),
      });
    }
  }
}

async function withPair(
  open: () => Promise<GroupLayer>,
  cross: boolean,
  timeoutMs: number,
  names: GroupNameRule,
  carriesBytes = false,
  run: Case,
): Promise<void> {
  const sender = await open();
  let member = sender;
  try {
    if (cross) member = await open();
    const runId = crypto.randomUUID().slice(0, 8);
    await run({
      sender,
      member,
      cross,
      group: (group) => `conformance.${runId}.${group}`,
      inbox: (layer) => new Inbox(layer, timeoutMs),
      listener: () => new Inbox(null, timeoutMs),
      names,
      carriesBytes,
    });
  } finally {
    await sender.close();
    if (member !== sender) await member.close();
  }
}

/** Checks a send's counts: `local` receivers in the sender's process, `remote` elsewhere. */
function assertCounts(
  result: SendResult,
  pair: LayerPair,
  expected: { onSender: number; onMember: number; dropped?: number },
): void {
  const { onSender, onMember, dropped = 0 } = expected;
  if (!pair.cross) {
    assertEquals([result.delivered, result.dropped], [onSender + onMember, dropped]);
    return;
  }
  assertEquals(result.delivered, onSender, "deliveries counted in the sender's process");
  if (onMember > 0) assert(result.remoteProcesses >= 1, "the other process was not counted");
}

async function reachesEveryMember(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("room");
  const [a, b, local] = [inbox(member), inbox(member), inbox(sender)];
  await sender.groupAdd(g, local.channel);
  await member.groupAdd(g, a.channel);
  await member.groupAdd(g, b.channel);
  const before = member.stats().delivered;
  const result = await sender.groupSend(g, { type: "hello", text: "hi" });
  assertCounts(result, pair, { onSender: 1, onMember: 2 });
  for (const box of [a, b, local]) await box.receives("hello");
  assertEquals(a.events[0], { type: "hello", text: "hi" });
  assert(member.stats().delivered - before >= 2, "stats().delivered counts the deliveries");
  await sender.groupSend(g, { type: "marker" });
  for (const box of [a, b, local]) {
    await box.receives("marker");
    assertEquals(box.count("hello"), 1, "each member gets the event exactly once");
  }
}

async function emptyGroupDeliversNothing({ sender, group }: LayerPair): Promise<void> {
  const result = await sender.groupSend(group("nobody-here"), { type: "counted" });
  assertEquals([result.delivered, result.dropped], [0, 0]);
}

async function isolatesGroups({ sender, member, group, inbox }: LayerPair): Promise<void> {
  const [ga, gb] = [group("a"), group("b")];
  const [a, b] = [inbox(member), inbox(member)];
  await member.groupAdd(ga, a.channel);
  await member.groupAdd(gb, b.channel);
  await sender.groupSend(ga, { type: "for-a" });
  await sender.groupSend(gb, { type: "for-b" });
  await a.receives("for-a");
  await b.receives("for-b");
  await sender.groupSend(ga, { type: "marker" });
  await sender.groupSend(gb, { type: "marker" });
  await a.receives("marker");
  await b.receives("marker");
  assertEquals(a.count("for-b"), 0, "a member of one group got another group's event");
  assertEquals(b.count("for-a"), 0, "a member of one group got another group's event");
}

async function discardStopsDelivery(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("leaving");
  const [leaver, witness] = [inbox(member), inbox(member)];
  await member.groupAdd(g, leaver.channel);
  await member.groupAdd(g, witness.channel);
  await sender.groupSend(g, { type: "before" });
  await leaver.receives("before");
  await member.groupDiscard(g, leaver.channel);
  const result = await sender.groupSend(g, { type: "after" });
  await witness.receives("after");
  assertEquals(leaver.count("after"), 0, "a discarded member still received the group's event");
  assertCounts(result, pair, { onSender: 0, onMember: 1 });
}

async function addIsIdempotent(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("twice");
  const [twice, witness] = [inbox(member), inbox(member)];
  await member.groupAdd(g, twice.channel);
  await member.groupAdd(g, twice.channel);
  await member.groupAdd(g, witness.channel);
  const result = await sender.groupSend(g, { type: "once" });
  assertCounts(result, pair, { onSender: 0, onMember: 2 });
  await sender.groupSend(g, { type: "marker" });
  await twice.receives("marker");
  assertEquals(twice.count("once"), 1, "a channel added twice got the event twice");
  // Adding twice is adding once: one discard is enough to leave.
  await member.groupDiscard(g, twice.channel);
  await sender.groupSend(g, { type: "after" });
  await witness.receives("after");
  assertEquals(twice.count("after"), 0, "one discard did not undo two adds");
}

async function discardOfMissingIsNoOp({ sender, member, group, inbox }: LayerPair): Promise<void> {
  const g = group("present");
  const [present, stranger] = [inbox(member), inbox(member)];
  await member.groupAdd(g, present.channel);
  await member.groupDiscard(group("never-created"), present.channel);
  await member.groupDiscard(g, stranger.channel);
  await member.groupDiscard(g, "no-such-channel");
  await sender.groupDiscard(g, stranger.channel);
  await sender.groupSend(g, { type: "still-here" });
  await present.receives("still-here");
  assertEquals(stranger.calls, 0);
}

async function manyGroupsPerChannel({ sender, member, group, inbox }: LayerPair): Promise<void> {
  const groups = Array.from({ length: 20 }, (_, i) => group(`many.${i}`));
  const [box, witness] = [inbox(member), inbox(member)];
  for (const g of groups) await member.groupAdd(g, box.channel);
  await member.groupAdd(groups[0], witness.channel);
  await Promise.all(groups.map((g, n) => sender.groupSend(g, { type: "from", n })));
  await box.until(() => box.count("from") === groups.length, "one event from each group");
  assertEquals(new Set(box.numbers("from")).size, groups.length);
  await member.groupDiscard(groups[0], box.channel);
  await sender.groupSend(groups[1], { type: "still", n: 1 });
  await sender.groupSend(groups[0], { type: "left", n: 0 });
  await box.receives("still", 1);
  await witness.receives("left", 0);
  assertEquals(box.count("left"), 0, "leaving one group left the channel in it");
}

async function closeChannelLeavesAll({ sender, member, group, inbox }: LayerPair): Promise<void> {
  const groups = [group("c1"), group("c2"), group("c3")];
  const [closing, witness] = [inbox(member), inbox(member)];
  for (const g of groups) {
    await member.groupAdd(g, closing.channel);
    await member.groupAdd(g, witness.channel);
  }
  const channelsBefore = member.stats().channels;
  await member.closeChannel(closing.channel);
  assertEquals(member.stats().channels, channelsBefore - 1);
  for (const g of groups) await sender.groupSend(g, { type: "after-close", group: g });
  await sender.send(closing.channel, { type: "direct" });
  await witness.until(() => witness.count("after-close") === 3, "the three group events");
  await sender.send(witness.channel, { type: "marker" });
  await witness.receives("marker");
  assertEquals(closing.calls, 0, "a closed channel's receiver was called");
}

// A consumer may join without awaiting it (`void conn.groupAdd(g)`), and its socket may close
// while the first join still waits for the broker: what was asked for last wins.
async function joinThenLeaveKeepOrder(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const [left, closed, witness] = [inbox(member), inbox(member), inbox(member)];
  const [g1, g2, g3] = [group("join-leave"), group("join-close"), group("witnessed")];
  await Promise.all([member.groupAdd(g1, left.channel), member.groupDiscard(g1, left.channel)]);
  const closing = member.groupAdd(g2, closed.channel);
  await member.closeChannel(closed.channel);
  await closing.catch(() => {}); // a layer may refuse a join of a closed channel
  for (const g of [g1, g2, g3]) await member.groupAdd(g, witness.channel);
  const sent = await sender.groupSend(g1, { type: "after", n: 1 });
  await sender.groupSend(g2, { type: "after", n: 2 });
  await witness.until(() => witness.count("after") === 2, "both events");
  assertEquals(left.count("after"), 0, "a join undone by a later leave won");
  assertEquals(closed.calls, 0, "a closed channel's join won");
  if (!pair.cross) assertEquals(sent.delivered, 1, "a left channel was counted as delivered to");
}

async function keepsSenderOrder({ sender, member, group, inbox }: LayerPair): Promise<void> {
  const g = group("ordered");
  const [a, b] = [inbox(member), inbox(member)];
  await member.groupAdd(g, a.channel);
  await member.groupAdd(g, b.channel);
  const count = 500;
  const sends = [];
  for (let n = 0; n < count; n++) sends.push(sender.groupSend(g, { type: "seq", n }));
  await Promise.all(sends);
  const expected = Array.from({ length: count }, (_, n) => n);
  for (const box of [a, b]) {
    await box.until(() => box.count("seq") === count, `${count} events`);
    assertEquals(box.numbers("seq"), expected);
  }
}

async function sendReachesOneChannel(pair: LayerPair): Promise<void> {
  const { sender, member, inbox } = pair;
  const [target, other] = [inbox(member), inbox(member)];
  const result = await sender.send(target.channel, { type: "direct", n: 1 });
  await target.receives("direct", 1);
  assertCounts(result, pair, { onSender: 0, onMember: 1 });
  await sender.send(other.channel, { type: "marker" });
  await other.receives("marker");
  await sender.send(target.channel, { type: "marker" });
  await target.receives("marker");
  assertEquals(target.count("direct"), 1);
  assertEquals(other.count("direct"), 0, "a send to one channel reached another");
}

async function namedChannelReachesListener(pair: LayerPair): Promise<void> {
  const { sender, member, group, listener } = pair;
  const name = group("jobs");
  const box = listener();
  const unlisten = await member.listen(name, box.deliver);
  const result = await sender.send(name, { type: "job", n: 1 });
  assertEquals(result.noListener ?? false, false, "a listened channel was reported unheard");
  assertEquals(result.delivered + result.remoteProcesses, 1, "the send was not counted once");
  await box.receives("job", 1);
  assertEquals(box.events[0], { type: "job", n: 1 });
  await unlisten();
}

async function namedChannelWithoutListener({ sender, group }: LayerPair): Promise<void> {
  const result = await sender.send(group("nobody-listens"), { type: "job" });
  assertEquals([result.delivered, result.noListener], [0, true]);
}

async function namedChannelOneListenerEach(pair: LayerPair): Promise<void> {
  const { sender, member, group, listener } = pair;
  const name = group("shared-jobs");
  const [a, b] = [listener(), listener()];
  const stops = [await member.listen(name, a.deliver), await sender.listen(name, b.deliver)];
  const count = 20;
  for (let n = 0; n < count; n++) await sender.send(name, { type: "job", n });
  await a.until(() => a.count("job") + b.count("job") === count, `${count} jobs in all`);
  const taken = [...a.numbers("job"), ...b.numbers("job")] as number[];
  assertEquals(taken.toSorted((x, y) => x - y), Array.from({ length: count }, (_, n) => n));
  for (const stop of stops) await stop();
}

async function namedChannelKeepsOrder(pair: LayerPair): Promise<void> {
  const { sender, member, group, listener } = pair;
  const name = group("ordered-jobs");
  const box = listener();
  const unlisten = await member.listen(name, box.deliver);
  const count = 200;
  await Promise.all(Array.from({ length: count }, (_, n) => sender.send(name, { type: "seq", n })));
  await box.until(() => box.count("seq") === count, `${count} events`);
  assertEquals(box.numbers("seq"), Array.from({ length: count }, (_, n) => n));
  await unlisten();
}

async function unlistenStopsDelivery(pair: LayerPair): Promise<void> {
  const { sender, member, group, listener } = pair;
  const name = group("leaving-jobs");
  const box = listener();
  const unlisten = await member.listen(name, box.deliver);
  await sender.send(name, { type: "before" });
  await box.receives("before");
  await unlisten();
  await unlisten(); // twice is once
  const result = await sender.send(name, { type: "after" });
  assertEquals([result.delivered, result.noListener], [0, true]);
  // A witness on another name, later: the earlier event would have come first.
  const witness = listener();
  const stop = await member.listen(group("witness-jobs"), witness.deliver);
  await sender.send(group("witness-jobs"), { type: "marker" });
  await witness.receives("marker");
  assertEquals(box.count("after"), 0, "a listener got an event after it stopped listening");
  await stop();
}

async function listenerFailureIsItsOwn(pair: LayerPair): Promise<void> {
  const { sender, member, group, listener } = pair;
  const name = group("failing-jobs");
  const box = listener();
  box.throwOn = 1;
  const unlisten = await member.listen(name, box.deliver);
  await sender.send(name, { type: "job", n: 1 }).catch(() => {});
  await sender.send(name, { type: "job", n: 2 });
  await box.receives("job", 2);
  assertEquals(box.numbers("job"), [2]);
  await unlisten();
}

async function refusesBadChannelNames({ sender, listener }: LayerPair): Promise<void> {
  const box = listener();
  for (const name of ["", "two words", "c".repeat(100), "café", "jobs\n"]) {
    await assertRejects(() => sender.listen(name, box.deliver), TypeError, "", `listen ${name}`);
    await assertRejects(() => sender.send(name, { type: "x" }), TypeError, "", `send ${name}`);
  }
}

async function lostSendIsSilent({ sender, member, inbox }: LayerPair): Promise<void> {
  const gone = inbox(member);
  await member.closeChannel(gone.channel);
  const result = await sender.send(gone.channel, { type: "late" });
  assertEquals([result.delivered, result.dropped], [0, 0]);
  const witness = inbox(member);
  await sender.send(witness.channel, { type: "marker" });
  await witness.receives("marker");
  assertEquals(gone.calls, 0);
}

async function overflowIsCounted(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("overflow");
  const [full, fine] = [inbox(member), inbox(member)];
  full.refusing = true;
  await member.groupAdd(g, full.channel);
  await member.groupAdd(g, fine.channel);
  const droppedBefore = member.stats().dropped;
  const result = await sender.groupSend(g, { type: "busy" });
  await fine.receives("busy");
  await sender.groupSend(g, { type: "marker" });
  await fine.receives("marker");
  if (!pair.cross) assertEquals([result.delivered, result.dropped], [1, 1]);
  assert(full.calls >= 1, "the full receiver was never offered the event");
  assertEquals(full.events.length, 0);
  assert(member.stats().dropped >= droppedBefore + 1, "stats().dropped did not count the drop");
  // A drop is not a removal: a receiver that catches up gets later events.
  full.refusing = false;
  await sender.groupSend(g, { type: "later" });
  await full.receives("later");
}

const BAD_NAMES: [string, string][] = [
  ["empty", ""],
  ["201 characters", "g".repeat(201)],
  ["a newline", "chat.a\nb"],
  ["a NUL", "chat.\u0000"],
  ["DEL", "chat.\u007f"],
  ["a C1 control", "chat.\u0085"],
  // A store writes it as U+FFFD: two such groups, and U+FFFD's, would share one history.
  ["a lone surrogate", "chat.x\ud800y"],
];
const GOOD_NAMES = ["chat.café au lait", "chat.東京", "g".repeat(200), "😀".repeat(200)];
const CONTRACT_NAMES: GroupNameRule = {
  valid: GOOD_NAMES,
  maxLength: 200,
  invalid: BAD_NAMES,
  validTitle: "Unicode, spaces and 200 characters",
  invalidTitle: "empty, too long, control-character and lone-surrogate",
};

async function refusesBadNames({ sender, inbox, names }: LayerPair): Promise<void> {
  const { channel } = inbox(sender);
  for (const [what, name] of names.invalid) {
    const refused = (operation: string) => `${operation} accepted a group name with ${what}`;
    await assertRejects(() => sender.groupAdd(name, channel), TypeError, "", refused("groupAdd"));
    await assertRejects(
      () => sender.groupDiscard(name, channel),
      TypeError,
      "",
      refused("discard"),
    );
    await assertRejects(
      () => sender.groupSend(name, { type: "x" }),
      TypeError,
      "",
      refused("send"),
    );
  }
}

async function acceptsValidNames(pair: LayerPair): Promise<void> {
  const { sender, member, inbox, names: rule } = pair;
  const box = inbox(member);
  // Unique per run without a prefix, so the longest names stay at the limit.
  const tag = crypto.randomUUID().slice(0, 6);
  const names = rule.valid.map((name) => {
    const chars = [...name];
    return chars.length + tag.length < rule.maxLength
      ? `${name}.${tag}`
      : chars.slice(tag.length).join("") + tag;
  });
  for (const name of names) await member.groupAdd(name, box.channel);
  for (const [n, name] of names.entries()) await sender.groupSend(name, { type: "named", n });
  await box.until(() => box.count("named") === names.length, "one event per group name");
}

async function refusesBadEvents({ sender, inbox }: LayerPair): Promise<void> {
  const { channel } = inbox(sender);
  const bad = [{}, { type: 5 }, null] as unknown as LayerEvent[];
  for (const event of bad) {
    await assertRejects(() => sender.groupSend("chat.lobby", event), TypeError);
    await assertRejects(() => sender.send(channel, event), TypeError);
  }
}

async function refusesEventsWithoutJson(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("json");
  const box = inbox(member);
  await member.groupAdd(g, box.channel);
  const cyclic: Record<string, unknown> = { type: "cyclic" };
  cyclic.self = cyclic;
  const bad = [{ type: "big", n: 10n ** 20n }, cyclic] as unknown as LayerEvent[];
  for (const event of bad) {
    // A `TypeError`, in the layer's own words: the contract does not fix its message.
    await assertRejects(() => sender.groupSend(g, event), TypeError);
    await assertRejects(() => sender.send(box.channel, event), TypeError);
  }
  await sender.groupSend(g, { type: "marker" });
  await box.receives("marker");
  assertEquals(box.count("big") + box.count("cyclic"), 0, "a member got an event with no JSON");
}

async function refusesEventsNotPlainData(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("plain");
  const box = inbox(member);
  await member.groupAdd(g, box.channel);
  let deep: unknown = {};
  for (let level = 0; level < 200; level++) deep = { inner: deep };
  const bad = [
    { type: "date", at: new Date(0) },
    { type: "map", inner: { map: new Map() } },
    { type: "instance", value: new URL("https://example.com/") },
    { type: "function", call: () => {} },
    { type: "deep", deep },
    // What JSON would not give back as it is: `null`, or nothing, in another process.
    { type: "nan", count: NaN },
    { type: "infinity", inner: { ratio: -Infinity } },
    { type: "symbol", tag: Symbol("x") },
    { type: "undefined-in-array", list: [1, undefined] },
    { type: "empty-slots", list: new Array(2) },
    // Bytes, where they would not arrive as sent (a JSON wire): below where they do.
    ...(pair.carriesBytes ? [] : [{ type: "bytes", inner: { data: new Uint8Array([1, 2]) } }]),
  ] as LayerEvent[];
  for (const event of bad) {
    await assertRejects(() => sender.groupSend(g, event), TypeError, undefined, event.type);
    await assertRejects(() => sender.send(box.channel, event), TypeError, undefined, event.type);
    // At the sender, whether a worker listens or not: not only once one runs.
    const unheard = pair.group("nobody-listens-plain");
    await assertRejects(() => sender.send(unheard, event), TypeError, undefined, event.type);
  }
  await sender.groupSend(g, { type: "marker" });
  await box.receives("marker");
  assertEquals(box.events.map((event) => event.type), ["marker"], "a member got what is not data");
  // A property left `undefined` (an optional field) reads the same everywhere: it passes.
  await sender.groupSend(g, { type: "optional", absent: undefined });
  await box.receives("optional");
  assertEquals((box.events.at(-1) as { absent?: unknown }).absent, undefined);
  box.events.pop();
  if (!pair.carriesBytes) return;
  // Where bytes are carried, they arrive as sent: to a group's member and to a named channel's
  // listener (a worker's queue) alike.
  const worker = pair.listener();
  const unlisten = await member.listen(pair.group("bytes-jobs"), worker.deliver);
  const bytes = { type: "bytes", inner: { data: new Uint8Array([1, 2]) } };
  await sender.groupSend(g, bytes);
  await sender.send(pair.group("bytes-jobs"), {
    ...bytes,
    inner: { data: new Uint8Array([1, 2]) },
  });
  await box.receives("bytes");
  await worker.receives("bytes");
  for (const event of [box.events[1], worker.events[0]]) {
    const { data } = (event as LayerEvent & { inner: { data: unknown } }).inner;
    assert(data instanceof Uint8Array, `bytes arrived as ${JSON.stringify(data)}`);
    assertEquals([...(data as Uint8Array)], [1, 2]);
  }
  await unlisten();
}

async function deliversFrozenEvents(pair: LayerPair): Promise<void> {
  const { sender, member, group, inbox } = pair;
  const g = group("frozen");
  const [first, second] = [inbox(member), inbox(member)];
  await member.groupAdd(g, first.channel);
  await member.groupAdd(g, second.channel);
  await sender.groupSend(g, { type: "note", inner: { list: [1, { n: 2 }] } });
  await first.receives("note");
  await second.receives("note");
  for (const box of [first, second]) {
    const event = box.events[0] as LayerEvent & { inner: { list: [number, object] } };
    const parts = [event, event.inner, event.inner.list, event.inner.list[1]];
    assert(parts.every(Object.isFrozen), "a member got an event it could change for the others");
  }
}

async function namesChannelsUniquely({ sender, member, inbox }: LayerPair): Promise<void> {
  const before = member.stats().channels;
  const boxes = Array.from({ length: 500 }, (_, i) => inbox(i % 2 ? member : sender));
  assertEquals(new Set(boxes.map((box) => box.channel)).size, boxes.length);
  for (const box of boxes.filter((_, i) => i % 2)) await member.closeChannel(box.channel);
  assertEquals(member.stats().channels, before + (member === sender ? 250 : 0));
}

async function closesTwice({ sender }: LayerPair): Promise<void> {
  await sender.close();
  await sender.close();
}

const CASES: [Title, Case, boolean?][] = [
  ["group send reaches every current member exactly once and counts them", reachesEveryMember],
  ["group send to a group without members delivers nothing", emptyGroupDeliversNothing],
  ["a member of one group receives nothing sent to another", isolatesGroups],
  ["after group discard a channel receives nothing more from the group", discardStopsDelivery],
  ["adding a channel twice makes it a member once", addIsIdempotent],
  ["discarding a missing member or from an unknown group is a no-op", discardOfMissingIsNoOp],
  ["one channel can be in many groups at once", manyGroupsPerChannel],
  ["closing a channel takes it out of every group", closeChannelLeavesAll],
  ["a join then a leave or a close, not awaited in between, leave it out", joinThenLeaveKeepOrder],
  ["events from one sender arrive in the order they were sent", keepsSenderOrder],
  ["send reaches the one channel it names", sendReachesOneChannel],
  ["a send to a closed channel is lost without an error", lostSendIsSilent],
  ["a send to a named channel reaches its listener and is counted", namedChannelReachesListener],
  [
    "a send to a named channel nobody listens on is reported as not delivered",
    namedChannelWithoutListener,
  ],
  [
    "each event sent to a named channel goes to exactly one of its listeners",
    namedChannelOneListenerEach,
  ],
  ["events from one sender to a named channel arrive in order", namedChannelKeepsOrder],
  ["after unlisten a listener receives nothing and sends are reported", unlistenStopsDelivery],
  ["a listener that throws on one event still gets the next", listenerFailureIsItsOwn],
  ["invalid named channel names are refused", refusesBadChannelNames, true],
  [
    "a receiver over capacity loses the event, others get it, the drop is counted",
    overflowIsCounted,
  ],
  [(names) => `${names.validTitle} are valid group names`, acceptsValidNames],
  [(names) => `${names.invalidTitle} group names are refused`, refusesBadNames, true],
  ["an event without a string type is refused", refusesBadEvents, true],
  ["an event with no JSON text is refused at its sender", refusesEventsWithoutJson],
  ["an event that is not plain data is refused at its sender", refusesEventsNotPlainData],
  ["members get the event frozen, all the way down", deliversFrozenEvents],
  ["every new channel gets a unique name", namesChannelsUniquely],
  ["close can be called twice", closesTwice, true],
];
