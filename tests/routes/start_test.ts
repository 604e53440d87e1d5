/** The site's start: what it says it runs is what runs once it serves. */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { CapturedLog } from "../_support/captured_log.ts";

Deno.test("a start whose port is taken says no worker is listening; one that serves names them", async () => {
  using captured = new CapturedLog();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    await assertRejects(() => startTestServer({ logLevel: "info", port }), Error, "HOST and PORT");
    const said = captured.lines.filter((line) => line.includes("Worker listening"));
    assertEquals(said, [], "a start that failed announced its workers");
  } finally {
    taken.close();
  }
  await using _server = await startTestServer({ logLevel: "info" });
  assert(
    captured.lines.some((line) => /Worker listening on channel "dice"/.test(line)),
    captured.lines.join("\n"),
  );
});
