/**
 * Settings in the environment that look like ours but are not one (`PROT=9000`,
 * `METRICS_TOKNE=…`): read as nothing, they would leave the default in place without a word.
 */
import type { Env } from "./_config_schema.ts";
import { withinOneEdit } from "./_within_one_edit.ts";

/**
 * Each variable of `env` that is one edit (a letter added, dropped, changed or two swapped)
 * from a setting that `load` reads, or that a setting's name begins with, with the setting it
 * probably means: `PROT (did you mean PORT?)`.
 */
export function lookalikeSettings(env: Env, load: (env: Env) => unknown): string[] {
  const read = new Set<string>();
  // The settings are the names `load` asks for, so the list cannot drift from the code.
  const recording = new Proxy(env, {
    get(target, name) {
      if (typeof name === "string") read.add(name);
      return Reflect.get(target, name);
    },
  });
  load(recording);
  const found: string[] = [];
  for (const name of Object.keys(env)) {
    if (read.has(name)) continue;
    const meant = [...read].find((setting) => lookAlike(name, setting));
    if (meant !== undefined) found.push(`${name} (did you mean ${meant}?)`);
  }
  return found;
}

function lookAlike(name: string, setting: string): boolean {
  if (setting.length < 4 || name.length < 4) return false;
  // DRAIN_WINDOW for DRAIN_WINDOW_MS: the last part of the name left out.
  if (setting.startsWith(`${name}_`)) return true;
  return withinOneEdit(name, setting);
}
