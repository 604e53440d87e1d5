/**
 * `deno task createsuperuser`: makes a staff account (or makes an existing user staff) on the
 * store the server uses, checked with the sign-up rules; without a terminal it takes
 * `--username` and the password from stdin or `SUPERUSER_PASSWORD`.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { startTestServer } from "../_support/server.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { PYTHON, pythonUnavailable } from "../_support/python.ts";
import {
  parseSuperuserArgs,
  runCreateSuperuser,
  type SuperuserIo,
} from "../../cli/createsuperuser.ts";

const PASSWORD = "quiet river stone";
const FAST_HASHING = { PASSWORD_ITERATIONS: "1000", ALLOW_WEAK_PASSWORD_HASHING: "true" };

async function createsuperuser(
  args: string[],
  dataDir: string,
  options: { stdin?: string; env?: Record<string, string> } = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "createsuperuser", ...args],
    env: { DATA_DIR: dataDir, LOG_LEVEL: "silent", ...FAST_HASHING, ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  if (options.stdin !== undefined) await writer.write(new TextEncoder().encode(options.stdin));
  await writer.close();
  const { code, stderr } = await child.output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

async function adminStatus(client: WebClient): Promise<number> {
  const response = await client.get("/admin/");
  await response.body?.cancel();
  return response.status;
}

Deno.test("createsuperuser --password-stdin makes a staff account that opens /admin/", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
  try {
    const made = await createsuperuser(["--username", "Ada", "--password-stdin"], dataDir, {
      stdin: `${PASSWORD}\n`,
    });
    assertEquals(made.code, 0, made.stderr);
    assertStringIncludes(made.stderr, 'Superuser "Ada" created.');
    await using server = await startTestServer({ dataDir });
    const client = new WebClient(server.url);
    await client.logIn("ada", PASSWORD);
    assertEquals(await adminStatus(client), 200);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("createsuperuser makes an existing user staff and keeps their password", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
  try {
    {
      await using server = await startTestServer({ dataDir });
      const client = new WebClient(server.url);
      await client.signUp("bob", PASSWORD);
      await client.logIn("bob", PASSWORD);
      assertEquals(await adminStatus(client), 403);
    }
    const made = await createsuperuser(["--username", "bob"], dataDir);
    assertEquals(made.code, 0, made.stderr);
    assertStringIncludes(made.stderr, '"bob" is now staff (password unchanged).');
    await using server = await startTestServer({ dataDir });
    const client = new WebClient(server.url);
    await client.logIn("bob", PASSWORD);
    assertEquals(await adminStatus(client), 200);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("createsuperuser refuses a password the sign-up rules refuse", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
  try {
    const weak = await createsuperuser(["--username", "carol"], dataDir, {
      env: { SUPERUSER_PASSWORD: "12345678" },
    });
    assertEquals(weak.code, 1);
    assertStringIncludes(weak.stderr, "Error: This password is entirely numeric.");
    const usage = await createsuperuser([], dataDir);
    assertEquals(usage.code, 2);
    assertStringIncludes(usage.stderr, "pass --username");
    const noPassword = await createsuperuser(["--username", "carol"], dataDir);
    assertEquals(noPassword.code, 1);
    assertStringIncludes(noPassword.stderr, "--password-stdin or SUPERUSER_PASSWORD");
    // Nothing was created by the refused attempts.
    await using server = await startTestServer({ dataDir });
    assertEquals(await server.app.services.users.find("carol"), null);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** A terminal that answers each question with the next of `answers`, and keeps what it saw. */
function scriptedTerminal(answers: string[]) {
  const said: string[] = [];
  const asked: string[] = [];
  const io: SuperuserIo = {
    interactive: true,
    ask: (question) => Promise.resolve((asked.push(question), answers.shift() ?? null)),
    askSecret: (question) => Promise.resolve((asked.push(question), answers.shift() ?? null)),
    readStdin: () => Promise.reject(new Error("not read")),
    say: (line) => void said.push(line),
  };
  return { io, said, asked };
}

Deno.test("createsuperuser asks again until the two passwords match and pass the rules", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
  try {
    const command = parseSuperuserArgs([], { DATA_DIR: dataDir, ...FAST_HASHING });
    const answers = ["", "dora", PASSWORD, "something else", "dora", "dora", PASSWORD, PASSWORD];
    const { io, said, asked } = scriptedTerminal(answers);
    assertEquals(await runCreateSuperuser(command, io), 0);
    assertEquals(asked, [
      "Username: ",
      "Username: ",
      "Password: ",
      "Password (again): ",
      "Password: ",
      "Password (again): ",
      "Password: ",
      "Password (again): ",
    ]);
    assertEquals(said, [
      "Error: This field cannot be blank.",
      "Error: The two password fields didn’t match.",
      "Error: The password is too similar to the username.",
      "Error: This password is too short. It must contain at least 8 characters.",
      'Superuser "dora" created.',
    ]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("createsuperuser checks the username as it is entered, and asks for it again", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
  try {
    const command = parseSuperuserArgs([], { DATA_DIR: dataDir, ...FAST_HASHING });
    const answers = ["Anonymous", "bad name", "dora", PASSWORD, PASSWORD];
    const { io, said, asked } = scriptedTerminal(answers);
    assertEquals(await runCreateSuperuser(command, io), 0);
    assertEquals(asked, [
      "Username: ",
      "Username: ",
      "Username: ",
      "Password: ",
      "Password (again): ",
    ]);
    assertEquals(said.slice(0, 2), [
      "Error: This username is reserved.",
      "Error: Enter a valid username. This value may contain only letters, numbers, and " +
      "@/./+/-/_ characters.",
    ]);
    assertEquals(said.at(-1), 'Superuser "dora" created.');
    // Given on the command line, a bad one ends the command: there is nobody to ask.
    const given = parseSuperuserArgs(["--username", "Dice"], {
      DATA_DIR: dataDir,
      ...FAST_HASHING,
    });
    assertEquals(await runCreateSuperuser(given, { ...io, interactive: false }), 1);
    assertEquals(said.at(-1), "Error: This username is reserved.");
    // "dora" with a Cyrillic "о" would pass for her in every room: refused, as at sign-up.
    const lookalike = parseSuperuserArgs(["--username", "d\u043era"], {
      DATA_DIR: dataDir,
      ...FAST_HASHING,
    });
    assertEquals(await runCreateSuperuser(lookalike, { ...io, interactive: false }), 1);
    assertEquals(said.at(-1), "Error: This username looks like one that already exists.");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("createsuperuser's arguments: a missing username value is a usage error", () => {
  for (const args of [["--username"], ["--username", "--password-stdin"], ["ada"]]) {
    let message = "";
    try {
      parseSuperuserArgs(args, {});
    } catch (error) {
      message = (error as Error).message;
    }
    assertStringIncludes(message, "Usage: deno task createsuperuser");
  }
});

Deno.test("createsuperuser's arguments: --username is trimmed, as the prompt and the forms trim it", () => {
  assertEquals(parseSuperuserArgs(["--username", " ada "], {}).username, "ada");
  assertEquals(parseSuperuserArgs(["--username=\tada "], {}).username, "ada");
});

Deno.test("createsuperuser's arguments: a setting's value may follow it, as the usage line writes", () => {
  for (const args of [["--data-dir", "/tmp/site", "--username", "ada"], ["--data-dir=/tmp/site"]]) {
    const command = parseSuperuserArgs(args, {});
    assertEquals(command.config.dataDir, "/tmp/site");
  }
  assertEquals(parseSuperuserArgs(["--layer", "redis"], {}).config.layer, "redis");
});

// A pseudo-terminal needs python3's pty module (`tests/_support/in_terminal.py`).
const noTerminal = await pythonUnavailable(
  { imports: ["pty", "json"], label: "python3 with its pty module", packages: ["python3"] },
  "createsuperuser's terminal tests",
);
if (noTerminal !== null) console.log(`Skipping createsuperuser's terminal tests: ${noTerminal}`);

// `deno task createsuperuser` at a terminal (a pseudo-terminal python3 drives): at each prompt,
// the keys a person types. A key string's characters below U+0100 are single bytes.
async function atTerminal(dataDir: string, steps: [prompt: string, keys: string][]) {
  const driver = new URL("../_support/in_terminal.py", import.meta.url).pathname;
  const { stdout } = await new Deno.Command(PYTHON, {
    args: [driver, JSON.stringify(steps), "--", Deno.execPath(), "task", "createsuperuser"],
    env: { DATA_DIR: dataDir, LOG_LEVEL: "silent", NO_COLOR: "1", ...FAST_HASHING },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return JSON.parse(new TextDecoder().decode(stdout)) as { output: string; code: number | null };
}

// "é" as the two bytes a UTF-8 terminal sends for it.
const E_ACUTE = "\u00c3\u00a9";
const BACKSPACE = "\x7f";

Deno.test({
  name:
    "at a terminal, the password stored is the one seen typed: Backspace takes back a whole é, arrows type nothing",
  ignore: noTerminal !== null,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
    try {
      const typed = `pass${E_ACUTE}${BACKSPACE}eword-\x1b[D\x1b[Clong1\r`;
      const made = await atTerminal(dataDir, [
        ["Username:", "zoe\r"],
        ["Password:", typed],
        ["again", "passeword-long1\r"],
      ]);
      assertEquals(made.code, 0, made.output);
      assertStringIncludes(made.output, 'Superuser "zoe" created.');
      await using server = await startTestServer({ dataDir });
      const client = new WebClient(server.url);
      await client.logIn("zoe", "passeword-long1");
      assertEquals(await adminStatus(client), 200);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "at a terminal, Ctrl-C at either prompt says the operation was cancelled, exit 1",
  ignore: noTerminal !== null,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "channels-superuser-" });
    try {
      for (
        const steps of [
          [["Username:", "\x03"]],
          [["Username:", "zoe\r"], ["Password:", "\x03"]],
        ] as [string, string][][]
      ) {
        const stopped = await atTerminal(dataDir, steps);
        assertEquals(stopped.code, 1, stopped.output);
        assertStringIncludes(stopped.output, "Operation cancelled: no user was created.");
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
