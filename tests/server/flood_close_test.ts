/**
 * A client that floods is closed with 1008 and told why, even while it goes on sending: the
 * error frame before the close names it (`closing`), the client module stops sending, and the
 * close frame reaches it rather than being lost to the connection's reset (which browsers and
 * Deno report as 1006, with no reason). The server is a process of its own, as
 * `deno task start` runs it: in the test's own process, its event loop would pace the client.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { connectStream } from "../../client/channels_client.js";
import type { LiveClose } from "../../client/mod.js";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("a client module that floods on is closed with 1008 and the reason, every time", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-flood-" });
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", "--unstable-net", "--unstable-no-legacy-abort", MAIN],
    env: { DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    let output = "";
    const lines = server.stdout.pipeThrough(new TextDecoderStream());
    void server.stderr.cancel();
    for await (const text of lines) {
      output += text;
      if (output.includes("Serving the chat at")) break;
    }
    const url = /Serving the chat at (http:\/\/[^/\s]+)/.exec(output)?.[1];
    if (url === undefined) throw new Error(`The server did not start:\n${output}`);
    for (let run = 0; run < 3; run++) {
      const ended = Promise.withResolvers<LiveClose>();
      const stream = connectStream(`${url}/ws/chat/flood-${run}/`, {
        window: new EventTarget(),
        heartbeat: false,
        onClose: (event) => {
          ended.resolve(event);
          return { stop: "flooded" };
        },
      });
      // A send every 2 ms, whatever came back: a script's loop, or a page's queued burst.
      const timer = setInterval(() => {
        if (stream.isOpen) stream.send({ message: "again" }).catch(() => {});
      }, 2);
      // Bounded: a server that never closes the flooder fails the test, which then cleans up.
      let bound: ReturnType<typeof setTimeout> | undefined;
      const close = await Promise.race([
        ended.promise,
        new Promise<never>((_, reject) => {
          bound = setTimeout(() => reject(new Error("no close after 10 s of flooding")), 10_000);
        }),
      ]).finally(() => {
        clearTimeout(bound);
        clearInterval(timer);
        stream.close();
      });
      assertEquals(close.code, 1008, `run ${run}: ${JSON.stringify(close)}`);
      assertStringIncludes(close.reason, "Rate limit");
    }
  } finally {
    server.kill("SIGINT");
    await server.status;
    await Deno.remove(dataDir, { recursive: true });
  }
});
