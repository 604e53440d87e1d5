/** What the metrics' test files share: an app with a metrics token, and a strict scrape. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { type Consumer, createApp, page, socket } from "../../mod.ts";
import { createTestServices, testUpgrade } from "../../testing.ts";
import type { Config } from "../../mod.ts";

/** The metrics token of {@linkcode testApp}. */
export const TOKEN = "metrics-token-for-tests";

/** A consumer that echoes each text to its group. */
export const echo: Consumer = (conn) => ({
  async connect() {
    await conn.groupAdd("echoes");
  },
  async receive(text) {
    await conn.groupSend("echoes", { type: "echo", text });
  },
  events: { echo: (event) => conn.send(String(event.text)) },
});

/** An app of a page and two socket routes, with {@linkcode TOKEN}; `await using` closes it. */
export async function testApp(overrides: Partial<Config> = {}) {
  const services = await createTestServices({ metricsToken: TOKEN, ...overrides });
  const app = createApp({
    routes: [
      page("GET", "/", () => new Response("home")),
      socket("/ws/echo/:id/", echo),
      socket("/ws/private/", echo, { loginRequired: true }),
    ],
    services,
    upgrade: testUpgrade,
  });
  return {
    app,
    services,
    async [Symbol.asyncDispose]() {
      await app.close();
      await services[Symbol.asyncDispose]();
    },
  };
}

/** Samples keyed by series (name and labels). */
export type Samples = Map<string, number>;

/** Parses the text format strictly: every line is a HELP, a TYPE or a sample; keyed by series. */
export function parse(text: string): Samples {
  const samples: Samples = new Map();
  const types = new Map<string, string>();
  assert(text.endsWith("\n"), "the text ends with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      assertMatch(line, /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S.*$/);
    } else if (line.startsWith("# TYPE ")) {
      const match = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
      if (match === null) throw new Error(`bad TYPE line: ${line}`);
      types.set(match[1], match[2]);
    } else {
      const match =
        /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$/
          .exec(line);
      if (match === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
      const family = match[1].replace(/_(bucket|sum|count)$/, "");
      assert(types.has(match[1]) || types.get(family) === "histogram", `no TYPE for ${match[1]}`);
      const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
      assert(!Number.isNaN(value), `bad value in ${line}`);
      samples.set(match[1] + (match[2] ?? ""), value);
    }
  }
  return samples;
}

/** Scrapes `app`'s /metrics with `token`, checked and parsed. */
export async function scrape(
  app: { handle(request: Request): Promise<Response> },
  token = TOKEN,
): Promise<Samples> {
  const response = await app.handle(
    new Request("http://localhost/metrics", { headers: { authorization: `Bearer ${token}` } }),
  );
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parse(await response.text());
}
