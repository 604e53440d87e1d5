/**
 * The store contract, written once and run against every {@linkcode Store}: what users,
 * sessions, the login throttle and chat history rely on, wherever the state lives.
 *
 * ```ts
 * storeContract("redis store", () => RedisStore.open({ url, prefix }), { shared: true });
 * ```
 *
 * With `shared: true`, two stores from `open()` see the same data (two processes of one app):
 * the cases that matter across processes also run with the writer and reader apart.
 */
import { assert, assertEquals } from "@std/assert";
import type { Store, StoreChange } from "../../storage/store.ts";

/** Options of {@linkcode storeContract}. */
export interface StoreContractOptions {
  shared?: boolean;
  ignore?: boolean;
}

type Case = (writer: Store, reader: Store, ns: string) => Promise<void>;

/** Registers the contract's cases for the store that `open` creates. */
export function storeContract(
  name: string,
  open: () => Promise<Store>,
  options: StoreContractOptions = {},
): void {
  for (const [title, run] of CASES) {
    for (const apart of options.shared ? [false, true] : [false]) {
      Deno.test({
        name: `${name}: ${title}${apart ? " (written by one process, read by another)" : ""}`,
        ignore: options.ignore,
        fn: async () => {
          const writer = await open();
          const reader = apart ? await open() : writer;
          try {
            await run(writer, reader, `contract-${crypto.randomUUID().slice(0, 8)}`);
          } finally {
            writer.close();
            if (reader !== writer) reader.close();
          }
        },
      });
    }
  }
}

async function readsWhatWasWritten(writer: Store, reader: Store, ns: string): Promise<void> {
  assertEquals(await reader.get([ns, "missing"]), null);
  await writer.set([ns, "ada"], { username: "Ada", logins: 3, tags: ["a", "b"], none: null });
  assertEquals(await reader.get([ns, "ada"]), {
    username: "Ada",
    logins: 3,
    tags: ["a", "b"],
    none: null,
  });
  await writer.set([ns, "ada"], { username: "Ada", logins: 4 });
  assertEquals(await reader.get([ns, "ada"]), { username: "Ada", logins: 4 });
}

async function keepsRichValues(writer: Store, reader: Store, ns: string): Promise<void> {
  const value = { at: new Date("2026-01-02T03:04:05.000Z"), salt: new Uint8Array([0, 1, 255]) };
  await writer.set([ns, "rich"], value);
  const read = await reader.get<typeof value>([ns, "rich"]);
  assert(read?.at instanceof Date, "a Date came back as something else");
  assertEquals(read!.at.toISOString(), value.at.toISOString());
  assertEquals([...read!.salt], [0, 1, 255]);
}

async function createsOnlyOnce(writer: Store, reader: Store, ns: string): Promise<void> {
  assertEquals(await writer.create([ns, "users", "ada"], { n: 1 }), true);
  assertEquals(await reader.create([ns, "users", "ada"], { n: 2 }), false);
  assertEquals(await reader.get([ns, "users", "ada"]), { n: 1 });
  const listed = await reader.list([ns, "users"]);
  assertEquals(listed.map((entry) => entry.key), [[ns, "users", "ada"]]);
}

async function replacesOnlyWhatWasRead(writer: Store, reader: Store, ns: string): Promise<void> {
  const key = [ns, "users", "ada"];
  const at = new Date("2026-01-02T03:04:05.000Z");
  assertEquals(await writer.replace(key, { n: 1 }, { n: 2 }), false, "a missing key");
  assertEquals(await reader.get(key), null);
  await writer.set(key, { name: "ada", n: 1, at, tags: ["a"] });
  // What was read, its fields in another order (as another process may write them): the same.
  const read = { tags: ["a"], at: new Date(at), n: 1, name: "ada" };
  assertEquals(await reader.replace(key, read, { ...read, n: 2 }), true);
  assertEquals(await writer.replace(key, read, { ...read, n: 3 }), false, "changed since");
  assertEquals(await writer.replace(key, { ...read, tags: [] }, { n: 4 }), false);
  assertEquals(await reader.get(key), { ...read, n: 2 });
  assertEquals((await reader.list([ns, "users"])).map((entry) => entry.key), [key]);
  // Many at once over what each read: one wins, whichever wrote first.
  const tries = Array.from(
    { length: 8 },
    (_, n) => (n % 2 ? writer : reader).replace(key, { ...read, n: 2 }, { n }),
  );
  const won = (await Promise.all(tries)).flatMap((wrote, n) => wrote ? [n] : []);
  assertEquals(won.length, 1);
  assertEquals(await reader.get(key), { n: won[0] });
}

async function replacesOverWhatWasWritten(writer: Store, reader: Store, ns: string) {
  const key = [ns, "users", "bea"];
  // Redis gives these back as JSON writes them (`null`, `0`, the field dropped), Deno KV as
  // they went in: compared with what was written, both find it unchanged.
  const written = { tags: ["a", undefined], score: -0, nickname: undefined };
  await writer.set(key, written);
  assertEquals(await reader.replace(key, written, { n: 1 }), true);
  assertEquals(await reader.get(key), { n: 1 });
}

async function deletes(writer: Store, reader: Store, ns: string): Promise<void> {
  await writer.set([ns, "s", "1"], "one");
  await writer.delete([ns, "s", "1"]);
  await writer.delete([ns, "s", "never"]);
  assertEquals(await reader.get([ns, "s", "1"]), null);
  assertEquals(await reader.list([ns, "s"]), []);
}

async function writesMany(writer: Store, reader: Store, ns: string): Promise<void> {
  await writer.set([ns, "b", "old"], "to be replaced by a removal");
  // More bytes than one Deno KV commit takes (800 KiB), so splitting the writes is exercised.
  const changes: StoreChange[] = [];
  for (let i = 0; i < 30; i++) {
    const value = { i, text: `${i}`.padEnd(40_000, ".") };
    changes.push({ key: [ns, "b", `k${String(i).padStart(2, "0")}`], value });
  }
  changes.push({ key: [ns, "b", "old"], delete: true });
  changes.push({ key: [ns, "b", "k00"], delete: true }); // written above, removed after: in order
  await writer.writeMany(changes);
  await writer.writeMany([]);
  const listed = await reader.list<{ i: number; text: string }>([ns, "b"]);
  assertEquals(listed.map((entry) => entry.value.i), Array.from({ length: 29 }, (_, i) => i + 1));
  assertEquals(listed.every((entry) => entry.value.text.length === 40_000), true);
  assertEquals(await reader.get([ns, "b", "old"]), null);
}

async function writesManySmallChanges(writer: Store, reader: Store, ns: string): Promise<void> {
  // More changes than one Deno KV commit takes (1,000).
  const changes: StoreChange[] = Array.from({ length: 2_500 }, (_, i) => ({
    key: [ns, "many", String(i).padStart(4, "0")],
    value: i,
  }));
  await writer.writeMany(changes);
  const listed = await reader.list<number>([ns, "many"]);
  assertEquals(listed.length, 2_500);
  assertEquals(listed.at(-1)?.value, 2_499);
}

async function listsInKeyOrder(writer: Store, reader: Store, ns: string): Promise<void> {
  for (const id of ["b", "a", "ab", "c", "a\u0000", "é", "東"]) {
    await writer.set([ns, "room", id], id);
  }
  await writer.set([ns, "roomier", "x"], "not in room");
  await writer.set([ns, "room"], "the prefix itself is not under itself");
  const all = await reader.list<string>([ns, "room"]);
  assertEquals(all.map((entry) => entry.value), ["a", "a\u0000", "ab", "b", "c", "é", "東"]);
  assertEquals(all[0].key, [ns, "room", "a"]);
  const lastTwo = await reader.list<string>([ns, "room"], { limit: 2, reverse: true });
  assertEquals(lastTwo.map((entry) => entry.value), ["東", "é"]);
}

async function listsDeeperKeys(writer: Store, reader: Store, ns: string): Promise<void> {
  await writer.set([ns, "h", "lobby", "1"], 1);
  await writer.set([ns, "h", "lobby", "2"], 2);
  await writer.set([ns, "h", "lounge", "1"], 3);
  const lobby = await reader.list<number>([ns, "h", "lobby"]);
  assertEquals(lobby.map((entry) => entry.value), [1, 2]);
  const every = await reader.list<number>([ns, "h"]);
  assertEquals(every.map((entry) => entry.value), [1, 2, 3]);
}

async function listsManyWithLimit(writer: Store, reader: Store, ns: string): Promise<void> {
  const ids = Array.from({ length: 130 }, (_, i) => String(i).padStart(3, "0"));
  await Promise.all(ids.map((id) => writer.set([ns, "history", id], id)));
  const recent = await reader.list<string>([ns, "history"], { limit: 50, reverse: true });
  assertEquals(recent.map((entry) => entry.value), ids.slice(-50).reverse());
  assertEquals((await reader.list([ns, "history"])).length, 130);
}

async function keepsUnexpiredEntries(writer: Store, reader: Store, ns: string): Promise<void> {
  await writer.set([ns, "sessions", "s1"], { user: "ada" }, { expireInMs: 60_000 });
  assertEquals(await reader.get([ns, "sessions", "s1"]), { user: "ada" });
  assertEquals((await reader.list([ns, "sessions"])).length, 1);
}

async function concurrentWritersLoseNothing(
  writer: Store,
  reader: Store,
  ns: string,
): Promise<void> {
  // Both sides write at once, as two Workers on one KV file do when every user logs in.
  const ids = Array.from({ length: 300 }, (_, i) => String(i).padStart(3, "0"));
  const created = await Promise.all(
    ids.flatMap((id) => [
      writer.create([ns, "burst", id], "writer"),
      reader.create([ns, "burst", id], "reader"),
    ]),
  );
  for (let i = 0; i < ids.length; i++) {
    assertEquals(
      created[2 * i] !== created[2 * i + 1],
      true,
      `exactly one create of ${ids[i]} won`,
    );
  }
  await Promise.all(ids.map((id) => reader.set([ns, "burst", `${id}-more`], id)));
  assertEquals((await writer.list([ns, "burst"])).length, 600);
}

const CASES: [string, Case][] = [
  ["get reads what set wrote, null when missing", readsWhatWasWritten],
  ["dates and bytes come back as they went in", keepsRichValues],
  ["create writes only when the key is absent", createsOnlyOnce],
  [
    "replace writes only over the value that was read, whatever its fields' order",
    replacesOnlyWhatWasRead,
  ],
  [
    "replace finds a value unchanged however the store gave back its holes and zeros",
    replacesOverWhatWasWritten,
  ],
  ["delete removes a key; a missing key is a no-op", deletes],
  ["list returns the entries under a prefix in key order, reversed and limited", listsInKeyOrder],
  ["list reaches keys nested deeper under the prefix", listsDeeperKeys],
  ["list with a limit returns the last entries of a long list", listsManyWithLimit],
  ["an entry with an expiry is there until it expires", keepsUnexpiredEntries],
  ["writeMany applies many writes and removals in order, listed like single ones", writesMany],
  ["writeMany takes more changes than one commit can hold", writesManySmallChanges],
  [
    "writers on both sides at once lose nothing and each create has one winner",
    concurrentWritersLoseNothing,
  ],
];
