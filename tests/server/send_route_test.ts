/**
 * The framework's send endpoint in an app of its own: off without `SEND_TOKEN`, and the app's
 * rule decides what goes into a stream (with an offset), what goes to another group, and what
 * is refused.
 */
import { assertEquals } from "@std/assert";
import { createApp, InMemoryLayer, type OutsideSendRule, sendRoutes } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const TOKEN = "send-token-for-tests";

// A poll app: votes sent by a job are kept in the poll's stream; "Poll.X" is the poll "poll.x";
// a vote without a choice is refused.
const pollRule: OutsideSendRule = (group, event) => {
  if (!group.toLowerCase().startsWith("poll.")) return null;
  if (event.type === "vote" && typeof event.choice !== "string") {
    return { refused: "A vote needs a choice" };
  }
  return { group: group.toLowerCase(), stream: event };
};

function post(body: unknown): Request {
  return new Request("http://localhost/_send/", {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
}

Deno.test("an app's own send endpoint stores what its rule says, sends the rest, refuses what it refuses", async () => {
  await using services = await createTestServices({ sendToken: TOKEN });
  const app = createApp({
    routes: sendRoutes(services.config, { outside: pollRule }),
    services,
  });
  const stored = await app.handle(post({ group: "Poll.X", event: { type: "vote", choice: "a" } }));
  const answer = await stored.json();
  assertEquals([stored.status, answer.offset], [200, 1]);
  const kept = await services.streams.latest("poll.x", 10);
  assertEquals(kept.events.map((event) => [event.type, event.choice]), [["vote", "a"]]);

  const live = await app.handle(post({ group: "news", event: { type: "note" } }));
  const liveAnswer = await live.json();
  assertEquals([live.status, liveAnswer.offset, liveAnswer.delivered], [200, undefined, 0]);

  const refused = await app.handle(post({ group: "poll.x", event: { type: "vote" } }));
  assertEquals([refused.status, (await refused.json()).error], [400, "A vote needs a choice"]);
  await app.close();
});

Deno.test("a send whose body is not UTF-8 is refused with 400 and nothing is stored", async () => {
  await using services = await createTestServices({ sendToken: TOKEN });
  const app = createApp({ routes: sendRoutes(services.config, { outside: pollRule }), services });
  const latin1 = new TextEncoder().encode(
    JSON.stringify({ group: "poll.x", event: { type: "vote", choice: "cafX" } }),
  );
  latin1[latin1.indexOf(0x58)] = 0xe9; // "café" as Latin-1 writes it: not UTF-8, so not JSON
  const refused = await app.handle(
    new Request("http://localhost/_send/", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: latin1,
    }),
  );
  assertEquals([refused.status, (await refused.json()).error], [
    400,
    "The body is not valid UTF-8: JSON must be",
  ]);
  assertEquals((await services.streams.latest("poll.x", 10)).events, []);
  await app.close();
});

Deno.test("a send that names both a group and a channel is refused, and goes to neither", async () => {
  await using services = await createTestServices({ sendToken: TOKEN });
  const app = createApp({ routes: sendRoutes(services.config), services });
  const heard: unknown[] = [];
  const channel = services.layer.newChannel((event) => heard.push(event) > 0);
  await services.layer.groupAdd("news", channel);
  const both = await app.handle(post({ group: "news", channel, event: { type: "note" } }));
  assertEquals([both.status, (await both.json()).error], [
    400,
    'The body names a "group" and a "channel": send to one of them',
  ]);
  assertEquals(heard, []);
  // A sender that fills every key (Python's None) names one of them.
  const one = await app.handle(post({ group: "news", channel: null, event: { type: "note" } }));
  assertEquals([one.status, (await one.json()).delivered], [200, 1]);
  assertEquals(heard.length, 1);
  await app.close();
});

Deno.test("without SEND_TOKEN an app's send endpoint does not exist", async () => {
  await using services = await createTestServices();
  assertEquals(sendRoutes(services.config), []);
  const app = createApp({ routes: sendRoutes(services.config), services });
  const answer = await app.handle(post({ group: "news", event: { type: "note" } }));
  await answer.body?.cancel();
  assertEquals(answer.status, 404);
  await app.close();
});

Deno.test("a send that failed is a 503, its warning naming the endpoint and the group it went to", async () => {
  using captured = new CapturedLog();
  const layer = new InMemoryLayer();
  layer.groupSend = () => Promise.reject(new Error("the broker is away"));
  await using services = await createTestServices({ sendToken: TOKEN, logLevel: "warn" }, {
    layer,
  });
  const rename: OutsideSendRule = (group) => ({ group: group.toLowerCase() });
  const app = createApp({ routes: sendRoutes(services.config, { outside: rename }), services });
  const answer = await app.handle(post({ group: "News.Today", event: { type: "note" } }));
  assertEquals([answer.status, (await answer.json()).error], [
    503,
    "Not sent: the broker is away",
  ]);
  await captured.waitFor(/WARN \/_send\/ to "news\.today" failed/);
  await app.close();
});
