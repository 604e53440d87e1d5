/** One server per DATA_DIR: the lock a server holds, and what a second one is told. */
import {
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { lockDataDir } from "../../storage/data_dir_lock.ts";
import { kvPath } from "../../storage/kv_path.ts";
import { runServerToExit, startServerProcess } from "../scale/_process.ts";
import { startTestServer } from "../_support/server.ts";

Deno.test("a DATA_DIR held is refused to another holder, naming the first's pid, and free once let go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data-dir-lock-" });
  try {
    const first = await lockDataDir(dir);
    const refused = await assertRejects(
      () => lockDataDir(dir),
      Error,
      `DATA_DIR ${dir} is in use by another server (pid ${Deno.pid})`,
    );
    // What a tool beside the server (a seed script, a token maker) does instead.
    assertStringIncludes(refused.message, "openBackends(config, { holdDataDir: false })");
    first.close();
    (await lockDataDir(dir)).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second server on a DATA_DIR in use does not start, and says which server has it", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "data-dir-two-" });
  try {
    await using first = await startServerProcess({ DATA_DIR: dataDir });
    const { code, output } = await runServerToExit({ DATA_DIR: dataDir });
    assertNotEquals(code, 0);
    assertMatch(
      output,
      new RegExp(`Could not start: DATA_DIR .* is in use by another server \\(pid ${first.pid}\\)`),
    );
    // The first one serves on.
    const response = await fetch(`${first.url}/chat/`);
    assertEquals(response.status, 200);
    await response.body?.cancel();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a start that fails (its port taken) lets DATA_DIR go: the next start on it works", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "data-dir-failed-start-" });
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    await assertRejects(() => startTestServer({ dataDir, port }), Error, "HOST and PORT");
    await using server = await startTestServer({ dataDir });
    const response = await fetch(server.httpUrl("/chat/"));
    assertEquals(response.status, 200);
    await response.body?.cancel();
  } finally {
    taken.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a lock file that cannot be written is named, with what to look at", async () => {
  const dir = await Deno.makeTempDir({ prefix: "data-dir-unwritable-" });
  try {
    await Deno.mkdir(`${dir}/channels.lock`); // as unwritable as a full disk, even for root
    const error = await assertRejects(() => lockDataDir(dir), Error, `${dir}/channels.lock`);
    assertMatch(error.message, /cannot be written: .* \(is its disk full or read-only/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LAYER=broadcast without --workers holds DATA_DIR too: a --workers server is refused on it", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "data-dir-broadcast-" });
  try {
    await using first = await startServerProcess({ DATA_DIR: dataDir, LAYER: "broadcast" });
    const { code, output } = await runServerToExit({ DATA_DIR: dataDir, WORKERS: "2" });
    assertNotEquals(code, 0);
    assertMatch(output, new RegExp(`is in use by another server \\(pid ${first.pid}\\)`));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a DATA_DIR that is a file is refused naming DATA_DIR, not only the mkdir that failed", async () => {
  const file = await Deno.makeTempFile({ prefix: "data-dir-file-" });
  try {
    await assertRejects(
      () => kvPath(file),
      Error,
      `DATA_DIR ${file} cannot be used as a directory`,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a DATA_DIR made by the server is its own user's only; one that exists keeps its mode", async () => {
  const parent = await Deno.makeTempDir({ prefix: "data-dir-mode-" });
  try {
    await kvPath(`${parent}/data`);
    assertEquals((await Deno.stat(`${parent}/data`)).mode! & 0o777, 0o700);
    await Deno.mkdir(`${parent}/shared`, { mode: 0o750 });
    await Deno.chmod(`${parent}/shared`, 0o750);
    await kvPath(`${parent}/shared`);
    assertEquals((await Deno.stat(`${parent}/shared`)).mode! & 0o777, 0o750);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("the KV file is its own user's only, in a DATA_DIR others may read, and one an earlier run left readable is made so", async () => {
  const parent = await Deno.makeTempDir({ prefix: "kv-file-mode-" });
  try {
    // A directory others may read, as a Docker volume or systemd's StateDirectory often is.
    await Deno.mkdir(`${parent}/shared`);
    await Deno.chmod(`${parent}/shared`, 0o755);
    const path = await kvPath(`${parent}/shared`);
    const kv = await Deno.openKv(path!);
    await kv.set(["users", "ada"], "a password hash");
    kv.close();
    for (const file of [path!, `${path}-wal`, `${path}-shm`]) {
      const mode = await Deno.stat(file).then((info) => info.mode! & 0o777, () => null);
      if (mode !== null) assertEquals(mode, 0o600, file);
    }
    // A file from before, readable by all: made owner-only at the next start.
    await Deno.chmod(path!, 0o644);
    await kvPath(`${parent}/shared`);
    assertEquals((await Deno.stat(path!)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
