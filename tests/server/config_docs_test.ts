/**
 * `--help` sends a user to the README's configuration tables for every setting: each one the
 * server reads must have its row there, with its flag when it has one.
 */
import { assert } from "@std/assert";
import { configFlags, loadConfig } from "../../server/config.ts";
import type { Env } from "../../server/_config_schema.ts";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
// The rows of the README's tables: a setting named only in running text has no row.
const TABLE_ROWS = README.split("\n").filter((line) => line.startsWith("|"));

// The names `loadConfig` asks the environment for, with every layer's settings read.
function settingsRead(layer: string): Set<string> {
  const read = new Set<string>();
  const env: Env = new Proxy({ LAYER: layer } as Env, {
    get(target, name) {
      if (typeof name === "string") read.add(name);
      return Reflect.get(target, name);
    },
  });
  loadConfig([], env);
  return read;
}

Deno.test("every setting the server reads has a row in the README's tables", () => {
  const names = new Set(["memory", "redis", "channels_redis"].flatMap((l) => [...settingsRead(l)]));
  // Django's names, in one row for all (`CHANNELS_REDIS_…`) and a table of their own.
  const missing = [...names].filter((name) =>
    !TABLE_ROWS.some((row) => row.includes(`\`${name}\``))
  );
  assert(missing.length === 0, `no README table row for ${missing.join(", ")}`);
});

Deno.test("every flag has its row, beside its environment variable", () => {
  const missing = configFlags().filter((flag) =>
    !TABLE_ROWS.some((row) => row.includes(`\`${flag}\``))
  );
  assert(missing.length === 0, `no README table row for ${missing.join(", ")}`);
});
