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
