import { assertEquals, assertRejects } from "@std/assert";
import { storeContract } from "./store_contract.ts";
import { DenoKvStore } from "../../storage/deno_kv_store.ts";
import { KV_FLAG_MISSING } from "../../storage/kv_retry.ts";

// Two handles on one file stand for two Workers (or processes) of one machine.
const dir = await Deno.makeTempDir({ prefix: "kv-store-" });
storeContract("deno kv store", () => DenoKvStore.open(`${dir}/store.kv`), { shared: true });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.test("a Deno KV file that cannot be opened is named in the error, with what to look at", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kv-open-" });
  try {
    const damaged = `${dir}/damaged.kv`;
    await Deno.writeTextFile(damaged, "not a database ".repeat(50));
    await assertRejects(
      () => DenoKvStore.open(damaged),
      Error,
      `Deno KV file ${damaged}: file is not a database (it is damaged: move it away`,
    );
    // A directory where the file should be: it cannot be made.
    await assertRejects(() => DenoKvStore.open(dir), Error, "may this process create and write");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Another user's process: a test run as root stands for a server run as a user who may read a
// file but not write it (one restored as root, say). Root itself may write any file.
const asRoot = Deno.uid() === 0;
if (!asRoot) {
  if (Deno.env.get("CI") === "true") throw new Error("The read-only KV test needs root under CI");
  console.log("Skipping the read-only KV file test: it needs root, to run a process as nobody");
}

Deno.test({
  name: "a Deno KV file this process may read but not write is refused at the open, naming it",
  ignore: !asRoot,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kv-readonly-" });
    try {
      const file = `${dir}/data/channels.kv`;
      await Deno.mkdir(`${dir}/data`);
      const kv = await Deno.openKv(file);
      await kv.set(["users", "ada"], { name: "Ada" });
      kv.close();
      // The directory is nobody's (its journal may be made), the file root's, 0644.
      await Deno.chmod(dir, 0o755);
      await Deno.chown(`${dir}/data`, 65534, 65534);
      await Deno.mkdir(`${dir}/deno`);
      await Deno.chown(`${dir}/deno`, 65534, 65534);
      const store = new URL("../../storage/deno_kv_store.ts", import.meta.url).href;
      const probe = `${dir}/probe.ts`;
      await Deno.writeTextFile(
        probe,
        `import { DenoKvStore } from ${JSON.stringify(store)};\n` +
          `try { (await DenoKvStore.open(${
            JSON.stringify(file)
          })).close(); console.log("opened"); }\n` +
          `catch (error) { console.log(error.message); }\n`,
      );
      await Deno.chmod(probe, 0o644);
      const { stdout, stderr } = await new Deno.Command("setpriv", {
        args: ["--reuid=65534", "--regid=65534", "--clear-groups", Deno.execPath(), "run"]
          .concat(["--unstable-kv", "--allow-read", "--allow-write", "--no-lock", probe]),
        env: { DENO_DIR: `${dir}/deno`, NO_COLOR: "1" },
      }).output();
      const said = new TextDecoder().decode(stdout).trim();
      assertEquals(
        said,
        `Deno KV file ${file}: Can not write to a read-only database. (may this process write ` +
          "it? Look at its owner and mode)",
        new TextDecoder().decode(stderr),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("Deno run without --unstable-kv is told which flag it lacks, not that a file failed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kv-flag-" });
  try {
    const store = new URL("../../storage/deno_kv_store.ts", import.meta.url).href;
    const probe = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      probe,
      `import { DenoKvStore } from ${JSON.stringify(store)};\n` +
        `try { await DenoKvStore.open(${JSON.stringify(`${dir}/channels.kv`)}); }\n` +
        `catch (error) { console.log(error.message); }\n`,
    );
    const { stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", "--allow-read", "--allow-write", probe],
      env: { NO_COLOR: "1" },
    }).output();
    const said = new TextDecoder().decode(stdout).trim();
    assertEquals(said, KV_FLAG_MISSING, new TextDecoder().decode(stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
