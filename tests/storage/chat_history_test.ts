/** Chat history: batched writes, what a room shows on entry, and trimming in a shared store. */
import { assert, assertEquals } from "@std/assert";
import { ChatHistory, type ChatMessage, storedMessages } from "../../storage/chat_history.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { sortableId } from "../../storage/store.ts";

function message(room: string, text: string): ChatMessage {
  const id = sortableId();
  return { type: "chat.message", id, room, message: text, author: "ada", time: "" };
}

async function storedCount(store: DenoKvStore, room: string): Promise<number> {
  const entries = await store.list(["chat_history", room]);
  return entries.reduce((sum, entry) => sum + storedMessages(entry.value).length, 0);
}

Deno.test("a message shows in the room's history before it is written", async () => {
  using store = await openStore();
  const history = new ChatHistory(store);
  history.append(message("lobby", "hello"));
  assertEquals((await history.recent("lobby")).map((m) => m.message), ["hello"]);
  assertEquals(await storedCount(store, "lobby"), 0, "written at once instead of batched");
  await history.flush();
  assertEquals(await storedCount(store, "lobby"), 1);
});

Deno.test("flushed history is there for the next process, oldest first", async () => {
  using store = await openStore();
  const first = new ChatHistory(store);
  for (const text of ["one", "two", "three"]) first.append(message("東京", text));
  await first.flush();
  const next = new ChatHistory(store);
  assertEquals((await next.recent("東京")).map((m) => m.message), ["one", "two", "three"]);
  assertEquals(await next.recent("elsewhere"), []);
});

Deno.test("a busy room keeps its newest 50 messages and trims the rest", async () => {
  using store = await openStore();
  const history = new ChatHistory(store);
  for (let n = 1; n <= 300; n++) {
    history.append(message("busy", `m${n}`));
    if (n % 7 === 0) await history.flush(); // batches of 7, as a busy second would make
  }
  await history.flush();
  const shown = (await new ChatHistory(store).recent("busy")).map((m) => m.message);
  assertEquals(shown, Array.from({ length: 50 }, (_, i) => `m${i + 251}`));
  const stored = await storedCount(store, "busy");
  assert(stored >= 50 && stored < 50 + 2 * 7, `${stored} messages stored`);
});

Deno.test("two processes writing one room never trim each other's newest 50", async () => {
  using store = await openStore();
  const [a, b] = [new ChatHistory(store), new ChatHistory(store)];
  for (let n = 1; n <= 200; n++) {
    (n % 3 === 0 ? b : a).append(message("shared", `m${n}`));
    if (n % 5 === 0) await Promise.all([a.flush(), b.flush()]);
  }
  await Promise.all([a.flush(), b.flush()]);
  const shown = (await new ChatHistory(store).recent("shared")).map((m) => m.message);
  assertEquals(shown, Array.from({ length: 50 }, (_, i) => `m${i + 151}`));
});

async function openStore(): Promise<DenoKvStore & Disposable> {
  const store = await DenoKvStore.open(":memory:");
  return Object.assign(store, { [Symbol.dispose]: () => store.close() });
}

Deno.test("the longest message fits in the store, however its JSON escapes it", async () => {
  using store = await openStore();
  const history = new ChatHistory(store);
  // Six characters of JSON per control character, in a string of two-byte characters.
  const text = "\u0001".repeat(9_999) + "東";
  history.append(message("edge", text));
  await history.flush();
  assertEquals((await new ChatHistory(store).recent("edge")).map((m) => m.message), [text]);
});
