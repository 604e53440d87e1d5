/**
 * What `token`, `createsuperuser` and `changepassword` print when their run fails: a store they
 * could not reach, or a change to a user that other changes kept beating (run it again).
 */
import { assertEquals, assertStringIncludes } from "@std/assert";

async function runRejecting(kind: string): Promise<{ code: number; stderr: string }> {
  const script = new URL("../_support/rejecting_store_command.ts", import.meta.url);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", script.pathname, kind],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

Deno.test("a change to a user that other changes kept beating says to run the command again, not that the store is down", async () => {
  const { code, stderr } = await runRejecting("conflict");
  assertEquals(code, 1);
  assertEquals(
    stderr.trim(),
    'Error: User "ada" was being changed by something else at the same moment; ' +
      "run the command again.",
  );
});

Deno.test("a store that cannot be reached is said to be so", async () => {
  const { code, stderr } = await runRejecting("outage");
  assertEquals(code, 1);
  assertStringIncludes(stderr, "Could not reach the store: Connection refused (os error 111)");
});
