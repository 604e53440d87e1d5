/**
 * The local import graph as `deno info --json` sees it, with the checks `deno task check` runs
 * on it: no import cycles, the framework never reaching into an app, and the framework's folders
 * importing only downward.
 *
 * Run it as `deno run --allow-read --allow-run tests/_support/dependency_graph.ts`.
 */
import { fromFileUrl, relative, SEPARATOR } from "@std/path";

/** Which files are the framework, which are apps, and which framework files apps may import. */
export interface DependencyRules {
  /**
   * The framework's floors, from the ground up, each a list of path prefixes (a folder ending
   * in `/` or a single file). A file may import its own folder and anything on a lower floor,
   * never a higher floor nor another folder of its own floor: folders on one floor know
   * nothing of each other.
   */
  framework: string[][];
  /** Path prefixes of the apps built on the framework, in the same form. */
  apps: string[];
  /** The framework's public entry files, the only framework files an app may import. */
  entryPoints: string[];
}

/** This project's split between framework and apps. */
export const PROJECT_RULES: DependencyRules = {
  framework: [
    ["telemetry/", "client/"], // logging and metrics; the browser client, which imports nothing
    ["storage/"], // the key-value stores and the connections to them
    ["layers/", "auth/"], // groups and presence; users and sessions: neither needs the other
    ["server/"], // HTTP, WebSockets, consumers: where the rest comes together
    ["testing/"], // the communicator
    ["mod.ts", "testing.ts", "client/mod.js"], // the entry points
  ],
  apps: ["main.ts", "routes/", "consumers/", "templates/", "cli/", "examples/"],
  entryPoints: ["mod.ts", "testing.ts", "client/mod.js"],
};

/** Local files reachable from `entries` (relative to `cwd`), each mapped to the local files it imports. */
export async function moduleGraph(
  entries: string[],
  options: { cwd?: string; config?: string } = {},
): Promise<Map<string, string[]>> {
  // deno info reports canonical paths, so a symlinked cwd (macOS /tmp) must be resolved too.
  const root = await Deno.realPath(options.cwd ?? Deno.cwd());
  const toPath = (url: string): string =>
    relative(root, fromFileUrl(url)).replaceAll(SEPARATOR, "/");
  const graph = new Map<string, string[]>();
  // deno info takes one entry at a time; running them side by side keeps the check quick.
  const infos = await Promise.all(entries.map((entry) => denoInfo(entry, root, options.config)));
  for (const info of infos) {
    for (const module of info.modules) {
      if (!module.specifier.startsWith("file:")) continue;
      // Type-only imports and @ts-types hints tie files together as much as code imports do.
      const targets = (module.dependencies ?? []).flatMap((d) => [d.code, d.type]);
      const imports = new Set(
        targets.flatMap((t) => t?.specifier?.startsWith("file:") ? [toPath(t.specifier)] : []),
      );
      graph.set(toPath(module.specifier), [...imports].sort());
    }
  }
  return graph;
}

interface DenoInfo {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
  }[];
}

async function denoInfo(entry: string, cwd: string, config?: string): Promise<DenoInfo> {
  const args = ["info", "--json", ...(config ? ["--config", config] : []), entry];
  const out = await new Deno.Command(Deno.execPath(), { args, cwd }).output();
  const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  if (!out.success) throw new Error(`deno info ${entry} failed:\n${text(out.stderr)}`);
  return JSON.parse(text(out.stdout));
}

/** Every import cycle: each group of files that import one another, in import order where it is a ring. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  // Tarjan's strongly connected components; the graph is a few hundred files, so recursion is fine.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const components: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (stack.includes(next)) {
        low.set(file, Math.min(low.get(file)!, index.get(next)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component = stack.splice(stack.indexOf(file));
    const selfImport = graph.get(file)?.includes(file) ?? false;
    if (component.length > 1 || selfImport) components.push(inImportOrder(graph, component));
  };
  for (const file of [...graph.keys()].sort()) if (!index.has(file)) visit(file);
  return components.sort((a, b) => a[0].localeCompare(b[0]));
}

// Walks the component from its first file along imports, so a plain ring reads a -> b -> c.
function inImportOrder(graph: Map<string, string[]>, component: string[]): string[] {
  const members = new Set(component);
  const order: string[] = [];
  const walk = (file: string): void => {
    if (!members.delete(file)) return;
    order.push(file);
    for (const next of graph.get(file) ?? []) walk(next);
  };
  walk([...component].sort()[0]);
  return order;
}

/** One line per import the rules forbid, e.g. `server/app.ts imports routes/mod.ts: ...`. */
export function ruleBreaks(graph: Map<string, string[]>, rules: DependencyRules): string[] {
  // "server/" covers a folder, "mod.ts" only that file (not storage/mod.ts or mod.tsx).
  const matches = (file: string, prefix: string): boolean =>
    prefix.endsWith("/") ? file.startsWith(prefix) : file === prefix;
  const within = (file: string, prefixes: string[]): boolean =>
    prefixes.some((p) => matches(file, p));
  const framework = rules.framework.flat();
  // Which floor, and which folder on it, a framework file stands in; undefined for the rest.
  const placeOf = (file: string): { floor: number; folder: string } | undefined => {
    for (const [floor, prefixes] of rules.framework.entries()) {
      const folder = prefixes.find((p) => matches(file, p));
      if (folder) return { floor, folder };
    }
  };
  // "mod.ts", "mod.ts or testing.ts", "mod.ts, testing.ts or client/mod.js".
  const last = rules.entryPoints.at(-1);
  const others = rules.entryPoints.slice(0, -1).join(", ");
  const through = others === "" ? last : `${others} or ${last}`;
  const breaks: string[] = [];
  for (const [file, imports] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    for (const target of imports) {
      const from = placeOf(file);
      const to = placeOf(target);
      if (from && to && from.folder !== to.folder && to.floor >= from.floor) {
        const where = to.floor === from.floor ? "beside it" : "above it";
        breaks.push(
          `${file} imports ${target}: ${from.folder} must not import ${to.folder}, which stands ${where}`,
        );
      } else if (within(file, framework) && within(target, rules.apps)) {
        breaks.push(`${file} imports ${target}: the framework must not import an app`);
      } else if (
        within(file, rules.apps) && within(target, framework) &&
        !rules.entryPoints.includes(target)
      ) {
        breaks.push(
          `${file} imports ${target}: an app must use the framework only through ${through}`,
        );
      }
    }
  }
  return breaks;
}

async function tsFilesUnder(root: string, folder: string): Promise<string[]> {
  const files: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${root}/${folder}`)) {
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory) files.push(...await tsFilesUnder(root, path));
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  } catch (error) {
    // An app folder a fork removed (examples/, say) has nothing to check.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files;
}

if (import.meta.main) {
  // The repository root, wherever the check is started from.
  const root = fromFileUrl(new URL("../../", import.meta.url));
  const folders = ["routes", "consumers", "templates", "cli", "examples"];
  const found = await Promise.all(folders.map((folder) => tsFilesUnder(root, folder)));
  const entries = ["main.ts", "mod.ts", "testing.ts"];
  entries.push(...PROJECT_RULES.entryPoints.filter((f) => f.includes("/")), ...found.flat());
  const graph = await moduleGraph(entries, { cwd: root });
  const cycles = findCycles(graph);
  for (const cycle of cycles) {
    // A tangle of more than one ring has no single order to print, so it is listed instead.
    const ring = cycle.every((file, i) => graph.get(file)!.includes(cycle[(i + 1) % cycle.length]));
    const files = ring ? [...cycle, cycle[0]].join(" -> ") : `among ${cycle.join(", ")}`;
    console.log(`Import cycle: ${files}`);
  }
  const breaks = ruleBreaks(graph, PROJECT_RULES);
  for (const line of breaks) console.log(line);
  if (cycles.length + breaks.length > 0) Deno.exit(1);
  console.log(
    `Dependencies: ${graph.size} modules, no cycles, the framework imports no app, its folders import only downward`,
  );
}
