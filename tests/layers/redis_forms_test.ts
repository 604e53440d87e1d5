/** The three Redis forms in the configuration: each one read, and bad combinations refused. */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { loadConfig } from "../../server/config.ts";

const load = (env: Record<string, string>) => loadConfig([], { LAYER: "redis", ...env });

Deno.test("a plain REDIS_URL stays the default form", () => {
  assertEquals(loadConfig([], {}).redisForm, { kind: "url", url: "redis://127.0.0.1:6379" });
  assertEquals(load({ REDIS_URL: "redis://db:6380" }).redisForm, {
    kind: "url",
    url: "redis://db:6380",
  });
});

Deno.test("REDIS_SENTINELS with REDIS_SENTINEL_MASTER is a Sentinel set", () => {
  const config = load({
    REDIS_SENTINELS: "s1:26379, s2:26380,[::1]:26381",
    REDIS_SENTINEL_MASTER: "mymaster",
    REDIS_PASSWORD: "secret",
  });
  assertEquals(config.redisForm, {
    kind: "sentinel",
    masterName: "mymaster",
    sentinels: [
      { host: "s1", port: 26379 },
      { host: "s2", port: 26380 },
      { host: "::1", port: 26381 },
    ],
    password: "secret",
  });
});

Deno.test("REDIS_CLUSTER names the cluster's seed nodes", () => {
  assertEquals(load({ REDIS_CLUSTER: "10.0.0.1:7000,10.0.0.2:7000" }).redisForm, {
    kind: "cluster",
    nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "10.0.0.2", port: 7000 }],
    password: undefined,
  });
});

Deno.test("invalid Redis combinations are refused with a clear configuration error", () => {
  const cases: [Record<string, string>, string][] = [
    [{ REDIS_URL: "redis://a", REDIS_CLUSTER: "a:1" }, "not REDIS_URL and REDIS_CLUSTER"],
    [
      { REDIS_SENTINELS: "a:1", REDIS_SENTINEL_MASTER: "m", REDIS_CLUSTER: "a:1" },
      "not REDIS_SENTINELS and REDIS_CLUSTER",
    ],
    [{ REDIS_SENTINELS: "a:1" }, "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER"],
    [{ REDIS_SENTINEL_MASTER: "m" }, "REDIS_SENTINEL_MASTER needs REDIS_SENTINELS"],
    [{ REDIS_CLUSTER: "a" }, 'REDIS_CLUSTER must be host:port pairs separated by commas, got "a"'],
    [{ REDIS_CLUSTER: "a:70000" }, "REDIS_CLUSTER must be host:port pairs"],
    [{ REDIS_CLUSTER: "," }, "REDIS_CLUSTER must name at least one host:port"],
    [{ REDIS_PASSWORD: "x" }, "REDIS_PASSWORD is for Sentinels and Clusters"],
    [
      { LAYER: "channels_redis", REDIS_CLUSTER: "a:1" },
      "LAYER=channels_redis works with REDIS_URL",
    ],
  ];
  for (const [env, message] of cases) assertThrows(() => load(env), Error, message);
});

Deno.test("a REDIS_URL that is not one is refused without showing its password", () => {
  const cases: [string, string][] = [
    // A "/" in the password: not a URL at all.
    ["redis://:ab/cd+Secret=@127.0.0.1:6379/0", "REDIS_URL is not a valid URL"],
    // An unencoded "#": the rest of the password would be read as a fragment.
    ["redis://:p@ss#w0rd@127.0.0.1:6379/0", "percent-encode"],
    ["http://127.0.0.1:6379", "REDIS_URL must start with redis:// or rediss://"],
    ["redis://127.0.0.1:6379/db", "REDIS_URL's path is a database number"],
    // A "%" that is no escape: the client failed at connect with "URI malformed".
    ["redis://:Secret%zz@127.0.0.1:6379/0", 'holds a "%" that is not an escape'],
    // The client reads no query: the password would be ignored, and the URL logged with it.
    ["redis://127.0.0.1:6379/0?password=Secret", "REDIS_URL must not have a query"],
  ];
  for (const [url, message] of cases) {
    const error = assertThrows(() => load({ REDIS_URL: url }), Error, message);
    for (const secret of ["Secret", "cd+", "w0rd"]) {
      assert(!error.message.includes(secret), `"${error.message}" shows the password`);
    }
  }
  assertEquals(load({ REDIS_URL: "redis://:p%40ss%23w0rd@10.0.0.5:6379/2" }).redisForm, {
    kind: "url",
    url: "redis://:p%40ss%23w0rd@10.0.0.5:6379/2",
  });
});

Deno.test("a REDIS_URL without a password that does not parse is told its host or port, not to encode a password", () => {
  for (const url of ["redis://127.0.0.1:notaport", "redis://127.0.0.1:99999", "rediss://db host"]) {
    const error = assertThrows(() => load({ REDIS_URL: url }), Error);
    assertEquals(error.message, "REDIS_URL is not a valid URL: its host or port is invalid");
  }
  // With a user or password ("@" before the host), the password is the likelier culprit.
  assertThrows(
    () => load({ REDIS_URL: "redis://:ab/cd@127.0.0.1:notaport" }),
    Error,
    "REDIS_URL is not a valid URL: percent-encode",
  );
  // No password, no advice on one, whatever else is wrong.
  assertEquals(
    assertThrows(() => load({ REDIS_URL: "redis://127.0.0.1:6379/db" }), Error).message,
    "REDIS_URL's path is a database number (/0), if any",
  );
});
