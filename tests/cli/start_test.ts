/**
 * `deno task start` refuses a bad setting before it opens anything: one
 * `Configuration error: <NAME> …` line and exit code 2, whichever module can tell it is bad.
 */
import { assertEquals, assertMatch } from "@std/assert";

async function start(env: Record<string, string>): Promise<{ code: number; said: string }> {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-start-" });
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", "--unstable-net", "main.ts"],
      env: { DATA_DIR: `${dataDir}/data`, PORT: "0", ...env },
      stdout: "null",
      stderr: "piped",
    }).output();
    // Refused before the store: nothing was created.
    assertEquals(await Array.fromAsync(Deno.readDir(dataDir)), []);
    return { code, said: new TextDecoder().decode(stderr) };
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("an IN_PROCESS_WORKERS channel the site has no worker for is a configuration error", async () => {
  const { code, said } = await start({ IN_PROCESS_WORKERS: "dice,bogus" });
  assertEquals(code, 2, said);
  assertMatch(
    said,
    /^Configuration error: IN_PROCESS_WORKERS names no worker of this site: "bogus"; its channels are "dice" \(or all, none\)\n$/,
  );
});

Deno.test("a bad setting the configuration reads itself gives the same line and code", async () => {
  const { code, said } = await start({ IN_PROCESS_WORKERS: "a b" });
  assertEquals(code, 2, said);
  assertMatch(said, /^Configuration error: IN_PROCESS_WORKERS must be all, none or channel names/);
});
