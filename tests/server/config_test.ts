import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  DEFAULT_CONFIG,
  historyIdleMs,
  loadConfig,
  secretsOnCommandLine,
  settingTypos,
} from "../../server/config.ts";
import { createTestServices } from "../../testing.ts";

Deno.test("with nothing set the server runs on the embedded defaults", () => {
  const config = loadConfig([], {});
  // Served on loopback and reached directly: loopback names only (an app of its own, made
  // without `loadConfig`, answers to any host unless it says).
  const servedHosts = [".localhost", "127.0.0.1", "[::1]"];
  assertEquals(config, { ...DEFAULT_CONFIG, workers: 1, servedHosts });
  assertEquals([config.host, config.port, config.dataDir], ["127.0.0.1", 8000, "./data"]);
  assertEquals(config.layer, "memory");
  assertEquals(config.maxMessageBytes, 64 * 1024);
  assertEquals(config.rateLimit, { perSecond: 20, burst: 40 });
  assertEquals(config.channelCapacity, 100);
});

Deno.test("flags set host, port, data directory and layer, as --name value or --name=value", () => {
  const config = loadConfig(
    ["--host", "0.0.0.0", "--port=9001", "--data-dir", "/tmp/chat", "--layer=redis"],
    {},
  );
  assertEquals([config.host, config.port, config.dataDir], ["0.0.0.0", 9001, "/tmp/chat"]);
  assertEquals(config.layer, "redis");
});

Deno.test("a flag given without a value is true", () => {
  assertEquals(loadConfig(["--trust-proxy"], {}).trustProxy, true);
  assertEquals(loadConfig(["--trust-proxy", "--port", "1"], {}).trustProxy, true);
});

Deno.test('a flag that takes a value is refused without one, by name, not read as "true"', () => {
  for (const [flag, name] of [["host", "HOST"], ["data-dir", "DATA_DIR"], ["port", "PORT"]]) {
    assertThrows(
      () => loadConfig([`--${flag}`], {}),
      Error,
      `Option --${flag} needs a value (${name})`,
    );
    assertThrows(() => loadConfig([`--${flag}`, "--trust-proxy"], {}), Error, `--${flag} needs`);
  }
  assertThrows(() => loadConfig(["--in-process-workers"], {}), Error, "needs a value");
  // `--port=` does not put the default over PORT, nor `--data-dir=` the current directory.
  assertThrows(() => loadConfig(["--port="], { PORT: "9000" }), Error, "--port needs a value");
  assertThrows(() => loadConfig(["--data-dir="], {}), Error, "--data-dir needs a value");
  assertThrows(() => loadConfig(["--redis-url"], {}), Error, "needs a value (REDIS_URL)");
});

Deno.test("environment variables set what flags do not", () => {
  const config = loadConfig([], {
    HOST: "::1",
    PORT: "8123",
    DATA_DIR: "/var/chat",
    ALLOWED_HOSTS: "Example.com, .chat.example.org ,",
    TRUST_PROXY: "yes",
    MAX_MESSAGE_BYTES: "1024",
    RATE_LIMIT: "5",
    RATE_BURST: "7",
    CHANNEL_CAPACITY: "10",
    MAX_BUFFERED_BYTES: "2048",
    LOG_LEVEL: "warn",
  });
  assertEquals([config.host, config.port, config.dataDir], ["::1", 8123, "/var/chat"]);
  assertEquals(config.allowedHosts, ["example.com", ".chat.example.org"]);
  assertEquals(config.trustProxy, true);
  assertEquals(config.maxMessageBytes, 1024);
  assertEquals(config.rateLimit, { perSecond: 5, burst: 7 });
  assertEquals([config.channelCapacity, config.maxBufferedBytes], [10, 2048]);
  assertEquals(config.logLevel, "warn");
});

Deno.test("a flag wins over the environment variable of the same setting", () => {
  const config = loadConfig(["--port", "9002", "--host=localhost"], {
    PORT: "9003",
    HOST: "0.0.0.0",
  });
  assertEquals([config.host, config.port], ["localhost", 9002]);
});

Deno.test("an empty environment variable means the default", () => {
  assertEquals(loadConfig([], { PORT: "", TRUST_PROXY: "" }).port, 8000);
  assertEquals(loadConfig([], { TRUST_PROXY: "" }).trustProxy, false);
  const empty = loadConfig([], { DATA_DIR: "", HOST: "", REDIS_PREFIX: "", LOG_LEVEL: "" });
  assertEquals(
    empty.dataDir,
    DEFAULT_CONFIG.dataDir,
    "DATA_DIR= put the store in the current directory",
  );
  assertEquals(empty.host, DEFAULT_CONFIG.host);
  assertEquals(empty.redisPrefix, DEFAULT_CONFIG.redisPrefix);
});

Deno.test("the Redis linger is 10 ms unless set, in whole ms up to 100, by flag or variable", () => {
  assertEquals(loadConfig([], {}).redisLingerMs, 10);
  assertEquals(loadConfig([], { REDIS_LINGER_MS: "0" }).redisLingerMs, 0, "0 turns it off");
  assertEquals(loadConfig([], { REDIS_LINGER_MS: "5" }).redisLingerMs, 5);
  assertEquals(loadConfig(["--redis-linger-ms=100"], { REDIS_LINGER_MS: "3" }).redisLingerMs, 100);
});

Deno.test("the Redis master check is on unless REDIS_MASTER_CHECK turns it off; a typo is named", () => {
  assertEquals(loadConfig([], {}).redisMasterCheck, true);
  assertEquals(loadConfig([], { REDIS_MASTER_CHECK: "off" }).redisMasterCheck, false);
  assertEquals(loadConfig([], { REDIS_MASTER_CHECK: "on" }).redisMasterCheck, true);
  assertThrows(() => loadConfig([], { REDIS_MASTER_CHECK: "maybe" }), Error, "REDIS_MASTER_CHECK");
  assertEquals(settingTypos([], { REDIS_MASTER_CHEK: "off" }), [
    "REDIS_MASTER_CHEK (did you mean REDIS_MASTER_CHECK?)",
  ]);
});

Deno.test("a room's stored history outlives its last message 30 days unless HISTORY_IDLE_DAYS says otherwise", () => {
  const day = 24 * 60 * 60 * 1000;
  assertEquals(historyIdleMs(loadConfig([], {})), 30 * day);
  assertEquals(historyIdleMs(loadConfig([], { HISTORY_IDLE_DAYS: "1" })), day);
  // It must keep what the time window promises: else Deno KV drops messages younger than it.
  const windowOfAWeek = { HISTORY_WINDOW_SECONDS: String(7 * 24 * 3600) };
  assertEquals(loadConfig([], { ...windowOfAWeek, HISTORY_IDLE_DAYS: "7" }).historyIdleDays, 7);
  assertThrows(
    () => loadConfig([], { ...windowOfAWeek, HISTORY_IDLE_DAYS: "6" }),
    Error,
    "HISTORY_IDLE_DAYS (6 days) must keep a room at least as long as HISTORY_WINDOW_SECONDS " +
      "(604800 s): set HISTORY_IDLE_DAYS to at least 7, or HISTORY_WINDOW_SECONDS to at most 518400",
  );
});

Deno.test("port 0 (any free port) is accepted", () => {
  assertEquals(loadConfig(["--port", "0"], {}).port, 0);
});

Deno.test("--workers auto uses every core", () => {
  assertEquals(loadConfig(["--workers", "auto"], {}, { cores: 6 }).workers, 6);
  assertEquals(loadConfig([], { WORKERS: "AUTO" }, { cores: 6 }).workers, 6);
  assertEquals(loadConfig([], { WORKERS: "3" }).workers, 3);
});

Deno.test("an invalid value is refused with an error that names the setting", () => {
  const cases: [string[], Record<string, string>, string][] = [
    [["--port", "http"], {}, "PORT"],
    [[], { PORT: "70000" }, "PORT"],
    [[], { PORT: "80.5" }, "PORT"],
    // Number() would read these as 8081 and 10000.
    [[], { PORT: "0x1f91" }, "PORT"],
    [[], { PORT: "1e4" }, "PORT"],
    [["--layer", "mongo"], {}, "LAYER"],
    [[], { TRUST_PROXY: "maybe" }, "TRUST_PROXY"],
    [[], { MAX_MESSAGE_BYTES: "0" }, "MAX_MESSAGE_BYTES"],
    [[], { RATE_LIMIT: "-1" }, "RATE_LIMIT"],
    [[], { RATE_BURST: "lots" }, "RATE_BURST"],
    [[], { CHANNEL_CAPACITY: "0" }, "CHANNEL_CAPACITY"],
    [[], { LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [["--workers", "0"], {}, "WORKERS"],
    [[], { REDIS_LINGER_MS: "101" }, "REDIS_LINGER_MS"],
    [["--redis-linger-ms", "2.5"], {}, "REDIS_LINGER_MS"],
    // Lifetimes Deno KV could not keep: refused now, not at the first log-in (a 500).
    [[], { SESSION_MAX_AGE: "10000000000000" }, "SESSION_MAX_AGE"],
    [[], { TOKEN_MAX_AGE: "315360001" }, "TOKEN_MAX_AGE"],
    [[], { LOGIN_FAILURE_WINDOW: "315360001" }, "LOGIN_FAILURE_WINDOW"],
    [[], { SIGNUP_WINDOW: "315360001" }, "SIGNUP_WINDOW"],
    // Above what a hash may claim: refused here, not by the store's hasher at start.
    [[], { PASSWORD_ITERATIONS: "200000000" }, "PASSWORD_ITERATIONS"],
    [[], { WORKERS: "many" }, "WORKERS must be auto or a whole number"],
    [[], { HISTORY_IDLE_DAYS: "0" }, "HISTORY_IDLE_DAYS"],
    [[], { HISTORY_IDLE_DAYS: "3651" }, "HISTORY_IDLE_DAYS"],
  ];
  for (const [args, env, setting] of cases) {
    const error = assertThrows(() => loadConfig(args, env), Error, setting);
    assert(/^[A-Z]/.test(error.message), `"${error.message}" should start with a capital`);
    assert(!error.message.endsWith("."), `"${error.message}" should not end with a period`);
  }
});

Deno.test("ten years is the longest lifetime a setting may ask for, and a session of it works", async () => {
  const config = loadConfig([], { SESSION_MAX_AGE: "315360000", TOKEN_MAX_AGE: "315360000" });
  assertEquals([config.sessionMaxAgeSeconds, config.tokenMaxAgeSeconds], [315360000, 315360000]);
  await using services = await createTestServices({
    sessionMaxAgeSeconds: config.sessionMaxAgeSeconds,
    tokenMaxAgeSeconds: config.tokenMaxAgeSeconds,
  });
  // A lifetime past a timer's 2^31 - 1 ms must not wrap to "already expired".
  const { id } = await services.sessions.create("ada");
  assertEquals((await services.sessions.get(id))?.username, "ada");
  const { token } = await services.tokens.create("ada");
  const check = await services.tokens.verify(token);
  assert(check.ok, check.ok ? "" : check.reason);
});

Deno.test("an argument that is not a flag is refused by name", () => {
  assertThrows(() => loadConfig(["9000"], {}), Error, 'Unexpected argument "9000"');
});

Deno.test("a flag the server does not know is refused by name, with the ones it knows", () => {
  assertThrows(
    () => loadConfig(["--prot", "9000"], {}),
    Error,
    "Unknown option --prot; the options are --host, --port,",
  );
  assertThrows(() => loadConfig(["--port=9000", "--verbose"], {}), Error, "--verbose");
  assertEquals(loadConfig(["--port", "9000", "--log-level=warn"], {}).port, 9000);
});

Deno.test("a variable that looks like a setting but is none is named, with the one it may mean", () => {
  const env = {
    PROT: "9000",
    METRICS_TOKNE: "t",
    DRAIN_WINDOW: "5000",
    REDIS_ULR: "redis://x",
    PORT: "8001",
    HOME: "/root",
    PATH: "/usr/bin",
    REDIS_HOST: "db",
    HOSTNAME: "box",
  };
  assertEquals(settingTypos([], env), [
    "PROT (did you mean PORT?)",
    "METRICS_TOKNE (did you mean METRICS_TOKEN?)",
    "DRAIN_WINDOW (did you mean DRAIN_WINDOW_MS?)",
    "REDIS_ULR (did you mean REDIS_URL?)",
  ]);
});

Deno.test("ALLOWED_HOSTS takes hosts; a URL, as Django's CSRF_TRUSTED_ORIGINS is written, stops the start", () => {
  const hosts = "example.com, chat.example.com:8443, .example.org, *, [::1]:8000, 127.0.0.1";
  assertEquals(loadConfig([], { ALLOWED_HOSTS: hosts }).allowedHosts.length, 6);
  assertThrows(
    () => loadConfig([], { ALLOWED_HOSTS: "https://chat.example.test" }),
    Error,
    'ALLOWED_HOSTS must list hosts (example.com, example.com:8443, .example.com or *), got "https://chat.example.test": write it as chat.example.test',
  );
  for (const bad of ["example.com/path", "exa mple.com", "example.com:port"]) {
    assertThrows(() => loadConfig(["--allowed-hosts", bad], {}), Error, "ALLOWED_HOSTS", bad);
  }
});

Deno.test("a SEND_TOKEN or METRICS_TOKEN with whitespace is refused by name, without its value", () => {
  // A space an env file left: no Authorization header could carry it, so every request would
  // be refused while the endpoint is on.
  for (const name of ["SEND_TOKEN", "METRICS_TOKEN"]) {
    const error = assertThrows(
      () => loadConfig([], { [name]: "s3cret-token-for-tests " }),
      Error,
      `${name} must not contain spaces`,
    );
    assert(!error.message.includes("s3cret"), `"${error.message}" shows the token`);
  }
  assertEquals(
    loadConfig([], { SEND_TOKEN: "s3cret-token-for-tests" }).sendToken,
    "s3cret-token-for-tests",
  );
  assertEquals(loadConfig([], { METRICS_TOKEN: "" }).metricsToken, "");
});

Deno.test("a SEND_TOKEN or METRICS_TOKEN outside printable ASCII is refused at start, without its value", () => {
  // Deno's fetch (the send CLI) refuses such a header before sending, and curl's UTF-8 bytes
  // are read one per character: the endpoint would refuse every request.
  for (const name of ["SEND_TOKEN", "METRICS_TOKEN"]) {
    for (const token of ["pass\u20acword", "t\u00f6k\u00e9n", "tab\u0007bell"]) {
      const error = assertThrows(
        () => loadConfig([], { [name]: token }),
        Error,
        `${name} must be printable ASCII only`,
      );
      assert(!error.message.includes("pass") && !error.message.includes("bell"), error.message);
    }
  }
  const punctuated = "a-Z_0.9~+/=!#$%&'*^`|";
  assertEquals(loadConfig([], { SEND_TOKEN: punctuated }).sendToken, punctuated);
});

// The send token posts as the server to any group, and a wrong guess is answered at once.
Deno.test("a SEND_TOKEN or METRICS_TOKEN shorter than 16 characters is refused at start, without its value", () => {
  for (const name of ["SEND_TOKEN", "METRICS_TOKEN"]) {
    for (const token of ["Q", "fifteen-chars!!"]) {
      const error = assertThrows(
        () => loadConfig([], { [name]: token }),
        Error,
        `${name} must be at least 16 characters`,
      );
      assert(!error.message.includes(token), error.message);
    }
    assertEquals(
      loadConfig([], {
        [name]: "sixteen-chars!!!",
      })[name === "SEND_TOKEN" ? "sendToken" : "metricsToken"],
      "sixteen-chars!!!",
    );
  }
});

Deno.test("a Redis password on the command line is warned about, never repeated; the environment is the place for it", () => {
  const args = ["--layer", "redis", "--redis-url", "redis://:hunter2@127.0.0.1:6390/0"];
  // It still works: an upgrade must not stop a server whose unit passes it so.
  assertEquals(loadConfig(args, {}).redisUrl, "redis://:hunter2@127.0.0.1:6390/0");
  const warnings = secretsOnCommandLine(args);
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("set REDIS_URL in the environment instead"), warnings[0]);
  assert(!warnings[0].includes("hunter2"), warnings[0]);
  assertEquals(secretsOnCommandLine(["--redis-url=redis://user:pw@h:1"]).length, 1);
  // No password, or none on the command line: nothing to say.
  assertEquals(secretsOnCommandLine(["--redis-url", "redis://127.0.0.1:6390/0"]), []);
  assertEquals(secretsOnCommandLine(["--layer", "redis"]), []);
});

Deno.test("DJANGO_SESSION_URL turns the Django session bridge on, with its cookie and timeout", () => {
  assertEquals(loadConfig([], {}).djangoSession, null);
  const url = "http://127.0.0.1:8001/channels/whoami/";
  assertEquals(loadConfig([], { DJANGO_SESSION_URL: url }).djangoSession, {
    url,
    cookie: "sessionid",
    timeoutMs: 2000,
    secret: "",
  });
  const set = loadConfig([], {
    DJANGO_SESSION_URL: url,
    DJANGO_SESSION_COOKIE: "django_sid",
    DJANGO_SESSION_TIMEOUT_MS: "500",
  });
  assertEquals([set.djangoSession?.cookie, set.djangoSession?.timeoutMs], ["django_sid", 500]);
  for (const bad of ["127.0.0.1:8001/whoami/", "ftp://host/", "http://"]) {
    assertThrows(() => loadConfig([], { DJANGO_SESSION_URL: bad }), Error, "DJANGO_SESSION_URL");
  }
  // A URL refused is quoted without the password it may hold.
  const withPassword = { DJANGO_SESSION_URL: "ftp://django:hunter2-secret@host/whoami/" };
  const refused = assertThrows(() => loadConfig([], withPassword), Error, "ftp://***@host/");
  assert(!refused.message.includes("hunter2"), refused.message);
  const badCookie = { DJANGO_SESSION_URL: url, DJANGO_SESSION_COOKIE: "session id" };
  assertThrows(() => loadConfig([], badCookie), Error, "DJANGO_SESSION_COOKIE");
  assertEquals(settingTypos([], { DJANGO_SESION_URL: url }), [
    "DJANGO_SESION_URL (did you mean DJANGO_SESSION_URL?)",
  ]);
});

Deno.test("with channels_redis, a Django prefix that starts this server's keys is refused: its flush() would take them", () => {
  for (const [ours, django] of [["channels", "channels"], ["asgi_ours", "asgi"], ["x", "x:dj"]]) {
    assertThrows(
      () =>
        loadConfig([], {
          LAYER: "channels_redis",
          REDIS_PREFIX: ours,
          CHANNELS_REDIS_PREFIX: django,
        }),
      Error,
      `CHANNELS_REDIS_PREFIX ("${django}") and REDIS_PREFIX ("${ours}") overlap`,
    );
  }
  // Apart, or on a layer Django does not share: taken. Django's flush() of "channels" or
  // "chat_django" deletes none of "ch:…" or "chat:…".
  for (const [ours, django] of [["channels", "myapp"], ["ch", "channels"], ["chat", "chat_dj"]]) {
    const apart = loadConfig([], {
      LAYER: "channels_redis",
      REDIS_PREFIX: ours,
      CHANNELS_REDIS_PREFIX: django,
    });
    assertEquals([apart.redisPrefix, apart.channelsRedis.prefix], [ours, django]);
  }
  const redis = loadConfig([], { LAYER: "redis", REDIS_PREFIX: "asgi" });
  assertEquals(redis.redisPrefix, "asgi");
  // A wildcard: flush() deletes `KEYS <prefix>*`, which "c*" makes every key starting "c".
  for (const wildcard of ["c*", "*", "ch?nnels", "[c]", "a\\b"]) {
    assertThrows(
      () => loadConfig([], { LAYER: "channels_redis", CHANNELS_REDIS_PREFIX: wildcard }),
      Error,
      "CHANNELS_REDIS_PREFIX must hold none of",
    );
  }
});
