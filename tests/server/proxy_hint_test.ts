/**
 * Behind a proxy without `TRUST_PROXY` every client has the proxy's address; the server says so
 * once, at the first request that carries `X-Forwarded-For`, and never with the setting on.
 */
import { assertEquals } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { CapturedLog } from "../_support/captured_log.ts";

const HINT = /carries X-Forwarded-For, but TRUST_PROXY is off/;

async function get(url: string, headers: HeadersInit = {}): Promise<void> {
  await (await fetch(url, { headers })).body?.cancel();
}

Deno.test("a request through a proxy, without TRUST_PROXY, is told once: every client would have the proxy's address", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info" });
  await get(server.httpUrl("/chat/")); // straight from the client: nothing to say
  await get(server.httpUrl("/chat/"), { "X-Forwarded-For": "203.0.113.7" });
  const hint = await captured.waitFor(HINT);
  // What to do, and which setting counts per address.
  assertEquals(
    ["TRUST_PROXY=true", "MAX_CONNECTIONS_PER_ADDRESS", "127.0.0.1"].filter((part) =>
      !hint.includes(part)
    ),
    [],
    hint,
  );
  await get(server.httpUrl("/chat/?again"), { "X-Forwarded-For": "203.0.113.8" });
  await captured.waitFor(/^HTTP GET \/chat\/\?again 200/);
  assertEquals(captured.lines.filter((line) => HINT.test(line)).length, 1, "said once");
});

Deno.test("with TRUST_PROXY on, a forwarded request is read, not warned about", async () => {
  using captured = new CapturedLog();
  await using server = await startTestServer({ logLevel: "info", trustProxy: true });
  await get(server.httpUrl("/chat/?forwarded"), { "X-Forwarded-For": "203.0.113.7" });
  await captured.waitFor(
    /^HTTP GET \/chat\/\?forwarded 200 \[[\d.]+, 203\.0\.113\.7 via 127\.0\.0\.1:\d+\]$/,
  );
  assertEquals(captured.lines.filter((line) => HINT.test(line)), []);
});
