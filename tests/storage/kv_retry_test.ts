import { assertEquals, assertRejects } from "@std/assert";
import { isLockedError, retryWhileLocked } from "../../storage/kv_retry.ts";

Deno.test("a write that meets a held SQLite lock is tried again until it goes through", async () => {
  let calls = 0;
  const result = await retryWhileLocked(() => {
    calls++;
    if (calls < 4) return Promise.reject(new TypeError("database is locked"));
    return Promise.resolve("written");
  });
  assertEquals(result, "written");
  assertEquals(calls, 4);
});

Deno.test("any other failure is reported at once, not retried", async () => {
  let calls = 0;
  await assertRejects(
    () =>
      retryWhileLocked(() => {
        calls++;
        return Promise.reject(new TypeError("Value too large (max 65536 bytes)"));
      }),
    TypeError,
    "Value too large",
  );
  assertEquals(calls, 1);
});

Deno.test("only SQLite's busy and locked messages count as a held lock", () => {
  assertEquals(isLockedError(new TypeError("database is locked")), true);
  assertEquals(isLockedError(new Error("SQLITE_BUSY: database table is locked")), true);
  assertEquals(isLockedError(new Error("locked out")), false);
  assertEquals(isLockedError("database is locked"), false);
});

Deno.test("Workers opening the same new databases at once all get them", async () => {
  // Opening sets the database up; without the retry, about one open in a hundred met the
  // other Workers' lock here ("database is locked"), as `--workers 2` did at start.
  const dir = await Deno.makeTempDir();
  const paths = Array.from({ length: 150 }, (_, i) => `${dir}/kv-${i}.sqlite3`);
  const workers = Array.from(
    { length: 4 },
    () => new Worker(new URL("./_open_kv_worker.ts", import.meta.url), { type: "module" }),
  );
  try {
    const errors = await Promise.all(workers.map((worker) =>
      new Promise<string[]>((resolve) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.postMessage(paths);
      })
    ));
    assertEquals(errors.flat(), []);
  } finally {
    for (const worker of workers) worker.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});
