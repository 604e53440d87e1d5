/**
 * The deno flags of deno.json's `start` task, so the bench runs our server with exactly the
 * flags `deno task start` gives it (its V8 flags among them) and cannot drift from them.
 */
export const START_TASK_FLAGS: readonly string[] = (JSON.parse(
  Deno.readTextFileSync(new URL("../deno.json", import.meta.url)),
).tasks.start as string).split(" ").filter((word) => word.startsWith("--"));
