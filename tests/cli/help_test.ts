/** Every command's `--help`: its usage on stdout, exit code 0, and nothing started or made. */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { asksForHelp } from "../../mod.ts";
import { parseSendArgs } from "../../cli/send.ts";

const COMMANDS: [string, string[], string][] = [
  ["start", ["main.ts"], "Usage: deno task start"],
  ["client", ["cli/chat_client.ts"], "Usage: deno task client <room>"],
  ["send", ["cli/send.ts"], "Usage: deno task send"],
  ["worker", ["cli/worker.ts"], "Usage: deno task worker <channel>..."],
  ["token", ["cli/token.ts"], "Usage: deno task token <username>"],
  ["createsuperuser", ["cli/createsuperuser.ts"], "Usage: deno task createsuperuser"],
  ["changepassword", ["cli/changepassword.ts"], "Usage: deno task changepassword <username>"],
];

for (const [name, args, usage] of COMMANDS) {
  Deno.test(`deno task ${name} --help prints its usage and exits 0`, async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "channels-help-" });
    try {
      const { code, stdout } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-kv", "--unstable-net", ...args, "--help"],
        env: { DATA_DIR: `${dataDir}/data`, PORT: "0" },
        stdout: "piped",
        stderr: "null",
      }).output();
      const printed = new TextDecoder().decode(stdout);
      assertEquals(code, 0, printed);
      assertStringIncludes(printed, usage);
      if (name === "start" || name === "worker") assertStringIncludes(printed, "--port");
      // Asking for help opens no store.
      assertEquals(await Array.fromAsync(Deno.readDir(dataDir)), []);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  });
}

Deno.test("-h after the first argument is a value: deno task send lobby -h sends the text", () => {
  assertEquals([asksForHelp(["-h"]), asksForHelp(["lobby", "--help"])], [true, true]);
  assertEquals(asksForHelp(["lobby", "-h"]), false);
  assertEquals(parseSendArgs(["lobby", "-h"]).event.message, { message: "-h" });
});

Deno.test("deno task worker: a wrong setting still gets the usage on --help, and a mistyped channel is told before Redis is asked", async () => {
  const run = (args: string[], env: Record<string, string>) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", "--unstable-net", "cli/worker.ts", ...args],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
  const help = await run(["--help"], { LAYER: "bogus" });
  assertEquals(help.code, 0, new TextDecoder().decode(help.stderr));
  assertStringIncludes(new TextDecoder().decode(help.stdout), "Usage: deno task worker");
  // Port 1: nothing listens there; the channel's name is the mistake to tell.
  const typo = await run(["dcie"], { LAYER: "redis", REDIS_URL: "redis://127.0.0.1:1" });
  const said = new TextDecoder().decode(typo.stderr);
  assertEquals(typo.code, 2, said);
  assertStringIncludes(said, 'No worker for channel(s) "dcie"; the router has "dice"');
});
