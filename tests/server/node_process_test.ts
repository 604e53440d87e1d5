import { assert } from "@std/assert";

// The site's default server never reads Node's `process` (see `storage/platform_path.ts`):
// reading it after a page, a static file and a chat message still grows the heap by the size
// of the `process` Deno then sets up. The control reads it first, so it grows by nothing.
async function heapGrowthOnFirstProcessRead(control: boolean): Promise<number> {
  const probe = new URL("../_support/node_process_probe.ts", import.meta.url);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--unstable-kv",
      "--unstable-net",
      "--v8-flags=--expose-gc",
      probe.href,
      ...(control ? ["--control"] : []),
    ],
  }).output();
  const decoder = new TextDecoder();
  assert(code === 0, `the probe failed: ${decoder.decode(stderr)}`);
  return (JSON.parse(decoder.decode(stdout)) as { grewBytes: number }).grewBytes;
}

Deno.test("the default server never sets up Node's process object", async () => {
  const [served, control] = await Promise.all([
    heapGrowthOnFirstProcessRead(false),
    heapGrowthOnFirstProcessRead(true),
  ]);
  assert(control < 100_000, `the control read process first, yet grew by ${control} bytes`);
  assert(
    served > 400_000,
    `reading process after serving grew the heap by only ${served} bytes: it was set up already`,
  );
});
