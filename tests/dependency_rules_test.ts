import { assertEquals } from "@std/assert";
import {
  type DependencyRules,
  findCycles,
  moduleGraph,
  PROJECT_RULES,
  ruleBreaks,
} from "./_support/dependency_graph.ts";

const graphOf = (edges: Record<string, string[]>): Map<string, string[]> =>
  new Map(Object.entries(edges));

const RULES: DependencyRules = {
  framework: [["storage/"], ["layers/", "auth/"], ["server/"], ["mod.ts"]],
  apps: ["main.ts", "routes/"],
  entryPoints: ["mod.ts"],
};

Deno.test("three files importing one another in a ring are one cycle, in import order", () => {
  const graph = graphOf({ "b.ts": ["c.ts"], "c.ts": ["a.ts"], "a.ts": ["b.ts"], "d.ts": ["a.ts"] });
  assertEquals(findCycles(graph), [["a.ts", "b.ts", "c.ts"]]);
});

Deno.test("a file importing itself is a cycle of its own", () => {
  assertEquals(findCycles(graphOf({ "a.ts": ["a.ts", "b.ts"], "b.ts": [] })), [["a.ts"]]);
});

Deno.test("imports that never lead back have no cycle", () => {
  const graph = graphOf({ "a.ts": ["b.ts", "c.ts"], "b.ts": ["c.ts"], "c.ts": [] });
  assertEquals(findCycles(graph), []);
});

Deno.test("the framework importing an app is a break", () => {
  assertEquals(ruleBreaks(graphOf({ "server/app.ts": ["routes/mod.ts"] }), RULES), [
    "server/app.ts imports routes/mod.ts: the framework must not import an app",
  ]);
});

Deno.test("an app importing a framework file other than an entry point is a break", () => {
  assertEquals(ruleBreaks(graphOf({ "routes/chat.ts": ["server/x.ts"] }), RULES), [
    "routes/chat.ts imports server/x.ts: an app must use the framework only through mod.ts",
  ]);
});

Deno.test("an app importing the framework through mod.ts is fine", () => {
  assertEquals(
    ruleBreaks(graphOf({ "main.ts": ["mod.ts"], "routes/a.ts": ["mod.ts"] }), RULES),
    [],
  );
});

Deno.test("a framework folder importing a folder on a higher floor is a break", () => {
  assertEquals(ruleBreaks(graphOf({ "storage/kv.ts": ["layers/log.ts"] }), RULES), [
    "storage/kv.ts imports layers/log.ts: storage/ must not import layers/, which stands above it",
  ]);
});

Deno.test("two framework folders on one floor must not import each other", () => {
  assertEquals(ruleBreaks(graphOf({ "auth/csrf.ts": ["layers/layer.ts"] }), RULES), [
    "auth/csrf.ts imports layers/layer.ts: auth/ must not import layers/, which stands beside it",
  ]);
});

Deno.test("imports within a folder, its subfolders, and down the floors are fine", () => {
  const graph = graphOf({
    "mod.ts": ["server/app.ts", "auth/users.ts"],
    "server/app.ts": ["server/router.ts", "layers/layer.ts", "auth/users.ts", "storage/kv.ts"],
    "layers/presence/core.ts": ["layers/layer.ts", "storage/kv.ts"],
    "layers/layer.ts": ["layers/presence/core.ts"],
  });
  assertEquals(ruleBreaks(graph, RULES), []);
});

Deno.test("a test file may import anything", () => {
  const graph = graphOf({ "tests/app_test.ts": ["server/app.ts", "routes/mod.ts", "mod.ts"] });
  assertEquals(ruleBreaks(graph, RULES), []);
});

Deno.test("the project's rules treat storage/mod.ts as framework, not as the entry point", () => {
  const graph = graphOf({ "routes/chat.ts": ["storage/mod.ts"], "storage/mod.ts": [] });
  assertEquals(ruleBreaks(graph, PROJECT_RULES), [
    "routes/chat.ts imports storage/mod.ts: an app must use the framework only through mod.ts, testing.ts or client/mod.js",
  ]);
});

Deno.test("moduleGraph finds the import between two files of a project without deno.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.ts`, 'import { b } from "./b.ts";\nconsole.log(b);\n');
    await Deno.writeTextFile(`${dir}/b.ts`, "export const b = 1;\n");
    const graph = await moduleGraph(["a.ts"], { cwd: dir });
    assertEquals(graph, new Map([["a.ts", ["b.ts"]], ["b.ts", []]]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
