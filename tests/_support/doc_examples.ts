/**
 * Type-checks every JSDoc example in the project's TypeScript source, each block on its own
 * (`deno check --doc-only`), so an example that no longer matches the code fails
 * `deno task check`. Left out: `tests/` and `bench/` (notes for this repository's own test
 * code, never shown to a package's reader) and `_test.ts` files.
 *
 * Run it as `deno run --allow-read --allow-run tests/_support/doc_examples.ts`.
 */
import { fromFileUrl } from "@std/path";

/** Folders at the root that hold no examples to check (besides hidden ones). */
const SKIPPED = new Set(["tests", "bench", "data", "node_modules"]);

/** The `.ts` files under `folder` (relative to `root`), `_test.ts` files and `SKIPPED` aside. */
export async function sourceFiles(root: string, folder = "."): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${root}/${folder}`)) {
    if (entry.name.startsWith(".") || (folder === "." && SKIPPED.has(entry.name))) continue;
    const path = folder === "." ? entry.name : `${folder}/${entry.name}`;
    if (entry.isDirectory) files.push(...await sourceFiles(root, path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) files.push(path);
  }
  return files.sort();
}

if (import.meta.main) {
  // The repository root, wherever the check is started from.
  const root = fromFileUrl(new URL("../../", import.meta.url));
  const files = await sourceFiles(root);
  const args = ["check", "--doc-only", ...files];
  const { code } = await new Deno.Command(Deno.execPath(), { args, cwd: root }).spawn().status;
  Deno.exit(code);
}
